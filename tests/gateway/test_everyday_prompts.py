"""Ordinary prompts that no benchmark holds, through the running gateway with the shipped backends (issue 28): at
every tier each candidate's predicted quality lies in [0, 1], the `cost` tier never picks a backend dearer than the
median candidate, and a 200,000-character document is routed in under 250 ms."""

from __future__ import annotations

import statistics
import time

import httpx
import pytest
import yaml

from gateway.settings import DEFAULT_CONFIG_DIR

REPORT = (
    "Quarterly operations report. Revenue in the northern region grew by four percent while costs held flat; "
    "the southern warehouse was closed for two weeks after a flood, and customer complaints about late deliveries "
    "doubled in that period. The board asked for a plan to cut delivery times before the holiday season. "
)
STACK_TRACE = """Traceback (most recent call last):
  File "/srv/app/worker.py", line 88, in run
    result = handler(job.payload)
  File "/srv/app/handlers.py", line 41, in resize
    width, height = payload["size"]
KeyError: 'size'
Why does my worker crash, and how do I fix it?"""
CODE = """def moving_average(values, window):
    out = []
    for i in range(len(values)):
        out.append(sum(values[i - window:i]) / window)
    return out
"""
LEASE = "The tenant shall keep the premises in good repair and shall not sublet without written consent. " * 120

USER_PROMPTS = {
    "greeting": "hi",
    "greeting, other language": "Bonjour ! Comment ça va aujourd'hui ?",
    "thanks": "thanks, that worked 👍",
    "translation en→de": "Translate into German: 'The meeting has been moved to Thursday at 3 pm.'",
    "translation ja→en": "次の文を英語に翻訳してください：「明日は雨が降るかもしれません。」",
    "summary of a 9,000-character report": "Summarise this report in three bullet points:\n\n" + REPORT * 35,
    "10,000-character lease": "Which clauses of this lease limit the tenant?\n\n" + LEASE[:10_000],
    "50,000-character document": "Give me the key risks in this document.\n\n" + (REPORT * 200)[:50_000],
    "200,000-character document": ("Summarise the following logs.\n\n" + "GET /api/v1/items 200 12ms\n" * 8000)[
        :200_000
    ],
    "code: write": "Write a Python function that merges two sorted lists in linear time, with tests.",
    "code: review": "What is wrong with this function?\n\n" + CODE,
    "code: SQL": "Write a SQL query that returns the ten customers with the highest total order value in 2023.",
    "debugging a stack trace": STACK_TRACE,
    "proof": "Prove that there are infinitely many prime numbers.",
    "proof, analysis": "Prove that every bounded monotone sequence of real numbers converges.",
    "maths word problem": "A train leaves at 9:40 and arrives at 13:05. How long is the journey in minutes?",
    "tenancy law": "My landlord kept my whole deposit for normal wear and tear. Is that legal in California?",
    "medical": "What are the common side effects of ibuprofen, and when should I see a doctor?",
    "creative": "Write a limerick about a cat who learns to code.",
    "Chinese question": "请解释一下量子纠缠是什么，用简单的语言。",
    "Russian question": "Объясните, пожалуйста, разницу между TCP и UDP.",
    "Arabic question": "ما هي عاصمة أستراليا ولماذا لم تُختر سيدني؟",
    "Hindi question": "भारत की सबसे लंबी नदी कौन सी है?",
    "only emoji": "🤔🤔🤔❓",
    "only digits": "3141592653589793238462643383279",
    "JSON output": 'Return a JSON object with keys "name", "age" and "city" for: Anna, 34, lives in Oslo.',
    "multiple choice": "Which gas do plants absorb from the air?\nA) Oxygen\nB) Carbon dioxide\nC) Nitrogen\nD) Helium",
    "one character": "?",
}
CHAT = [
    {"role": "system", "content": "You are a patient support agent for an internet provider. Answer briefly."},
    {"role": "user", "content": "My internet drops every evening around 8."},
    {"role": "assistant", "content": "Sorry to hear that. Does it happen on Wi-Fi and on a cable?"},
    {"role": "user", "content": "Only on Wi-Fi. The router is a few years old. What should I try first?"},
]
CONVERSATIONS = {name: [{"role": "user", "content": text}] for name, text in USER_PROMPTS.items()}
CONVERSATIONS["multi-turn chat with a system prompt"] = CHAT
TIERS = ("perf", "balanced", "cost")


def shipped_backends() -> list[dict]:
    return yaml.safe_load((DEFAULT_CONFIG_DIR / "models.yaml").read_text())["backends"]


def route(url: str, messages: list[dict], tier: str) -> dict:
    body = {"model": "auto", "messages": messages}
    response = httpx.post(f"{url}/v1/route", json=body, headers={"X-Budget-Tier": tier}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_list_covers_the_kinds_of_everyday_traffic():
    assert len(CONVERSATIONS) >= 25
    lengths = [len(m[0]["content"]) for m in CONVERSATIONS.values()]
    assert min(lengths) == 1 and max(lengths) == 200_000 and any(10_000 <= n < 200_000 for n in lengths)


@pytest.mark.parametrize("tier", TIERS)
def test_every_candidates_predicted_quality_is_in_the_unit_interval(gateway_factory, tier):
    url = gateway_factory(shipped_backends())
    for name, messages in CONVERSATIONS.items():
        decision = route(url, messages, tier)
        qualities = [c["predicted_quality"] for c in decision["candidates"]]
        assert qualities and all(0.0 <= q <= 1.0 for q in qualities), (name, qualities)
        if tier == "cost":
            costs = [c["estimated_cost"] for c in decision["candidates"]]
            chosen = next(c for c in decision["candidates"] if c["backend"] == decision["model"])
            assert chosen["estimated_cost"] <= statistics.median(costs), (name, decision["model"], costs)


def test_a_200000_character_document_is_routed_in_under_250_ms(gateway_factory):
    url = gateway_factory(shipped_backends())
    route(url, CONVERSATIONS["greeting"], "balanced")  # the first request pays for nothing of the long one
    messages = [
        {"role": "user", "content": "Summarise these notes.\n\n" + ("note: all fine today\n" * 10_000)[:200_000]}
    ]
    started = time.perf_counter()
    decision = route(url, messages, "balanced")
    wall_ms = (time.perf_counter() - started) * 1000
    assert decision["cache"] == "miss"
    assert decision["route_ms"] < 250 and wall_ms < 250, (decision["route_ms"], wall_ms)
