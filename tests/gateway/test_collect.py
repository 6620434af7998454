"""`llmrank collect` end to end: two local OpenAI-speaking servers play the backend and the judge; 50 prompts → JSONL
→ `llmrank calibrate` → `profile:` in models.yaml → the running gateway routes with that profile. An interrupted
collect resumes without asking again; a judge reply without a grade is asked again, then recorded as missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.app import create_app
from gateway.cli import main
from gateway.collect import JUDGE_TRIES, parse_grade
from gateway.settings import DEFAULT_CHECKPOINT, Settings
from tests.conftest import backend_entry, write_config
from tests.support.servers import serve
from tests.support.upstream import UpstreamControl, build_upstream

SECRET = "sk-collect-secret-123"
UNGRADED = "Tell me a riddle nobody can grade."


def prompts_file(tmp_path: Path) -> Path:
    prompts = [f"Write a function that sorts list number {i}." for i in range(25)]
    prompts += [f"Tell me riddle number {i}." for i in range(24)] + [UNGRADED]
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(prompts) + "\n")
    return path


def judge_reply(body: dict) -> str:
    question = body["messages"][0]["content"]
    if UNGRADED in question:
        return "I would rather not say."
    return "Clear and correct. Rating: [[9]]" if "Write a function" in question else "Vague. Rating: [[4]]"


def asked(control, backend: str) -> Counter[str]:
    """How often each prompt reached `backend` (the judge's requests are counted by the question they grade)."""
    counts: Counter[str] = Counter()
    for name, body in list(control.received):
        if name == backend:
            text = body["messages"][0]["content"]
            counts[text.split("[Question]\n", 1)[-1].split("\n\n[The Start", 1)[0]] += 1
    return counts


def test_grades_are_parsed_from_the_rubric_format_only():
    assert parse_grade("Rating: [[7]]") == 7 and parse_grade("[[10]] then [[3]]") == 3
    assert parse_grade("Rating: 7") is None and parse_grade("[[11]]") is None and parse_grade("[[0]]") is None


@pytest.fixture()
def judge_server() -> Iterator[tuple[str, UpstreamControl]]:
    """A second OpenAI-speaking server, of its own, that plays the judge."""
    control = UpstreamControl(content={"judge": judge_reply})
    with serve(build_upstream(control)) as base:
        yield base, control


def test_collect_resumes_and_its_rows_calibrate_a_profile_the_gateway_routes_with(upstream, judge_server, tmp_path):
    base, control = upstream
    judge_base, judge_control = judge_server
    control.answer_delay_s["cand"] = 0.05
    config = tmp_path / "config"
    write_config(
        config,
        [
            backend_entry("cand", "gpt-3.5-turbo-1106", f"{base}/b/cand/v1", 1e-6, api_key_env="CAND_KEY"),
            backend_entry("judge", "gpt-4-1106-preview", f"{judge_base}/b/judge/v1", 1e-5),
        ],
    )
    out, prompts = tmp_path / "scores.jsonl", prompts_file(tmp_path)
    args = ["collect", "--prompts", str(prompts), "--backend", "cand", "--judge", "judge", "--out", str(out),
            "--config", str(config), "--concurrency", "2"]  # fmt: skip
    environ = {**os.environ, "CAND_KEY": SECRET}

    interrupted = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args], env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 10):
        time.sleep(0.05)
    interrupted.kill()
    printed = interrupted.communicate()[0].decode()
    written_first = {json.loads(line)["prompt"] for line in out.read_text().splitlines() if line.endswith("}")}
    assert 10 <= len(written_first) < 50

    os.environ["CAND_KEY"] = SECRET
    try:
        assert main(args) == 0
    finally:
        del os.environ["CAND_KEY"]
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.endswith("}")]
    assert len({r["key"] for r in rows}) == len(rows) == 50
    backend_asked = asked(control, "cand")
    assert all(backend_asked[p] == 1 for p in written_first)  # nothing written before the interruption is asked again
    assert all(backend_asked[p] >= 1 for p in (r["prompt"] for r in rows))

    by_prompt = {r["prompt"]: r for r in rows}
    ungraded = by_prompt[UNGRADED]
    assert ungraded["quality"] is None and ungraded["grade"] is None and "no [[grade]]" in ungraded["missing"]
    assert asked(judge_control, "judge")[UNGRADED] == JUDGE_TRIES and not asked(control, "judge")
    code = by_prompt["Write a function that sorts list number 3."]
    assert code["grade"] == 9 and code["quality"] == 1 - 1 / 9 and code["prompt_tokens"] > 0 and code["cost"] > 0
    assert by_prompt["Tell me riddle number 3."]["quality"] == 3 / 9
    assert SECRET not in printed and SECRET not in out.read_text()
    sent = zip(control.received, control.authorization, strict=True)
    cand_keys = [auth for (name, _), auth in sent if name == "cand"]
    assert cand_keys and all(
        auth == f"Bearer {SECRET}" for auth in cand_keys
    )  # the key from the env var models.yaml names

    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(DEFAULT_CHECKPOINT, checkpoint)
    assert main(["calibrate", "--backend", "cand", "--data", str(out), "--checkpoint", str(checkpoint)]) == 0
    card = json.loads((checkpoint / "calibrated" / "cand.json").read_text())
    assert card["rows"] == 49  # the missing grade is not a score

    route_config = tmp_path / "route"
    write_config(
        route_config,
        [
            backend_entry("cand", "cand", f"{base}/b/cand/v1", 1e-6),
            backend_entry("strong", "gpt-4-1106-preview", f"{base}/b/strong/v1", 1e-5),
        ],
    )
    assert yaml.safe_load((route_config / "models.yaml").read_text())["backends"][0]["profile"] == "cand"
    app = create_app(Settings(config_dir=route_config, checkpoint=checkpoint, redis_url=None), environ={})
    with serve(app) as url:
        body = {"model": "auto", "messages": [{"role": "user", "content": "Write a function that reverses a list."}]}
        decision = httpx.post(f"{url}/v1/route", json=body, headers={"X-Budget-Tier": "cost"}, timeout=60).json()
    profiles = {c["backend"]: (c["profile"], c["predicted_quality"]) for c in decision["candidates"]}
    assert profiles["cand"][0] == "cand" and 0.0 <= profiles["cand"][1] <= 1.0
    assert decision["model"] == "cand"  # the calibrated profile rates its code answers high, and it is cheap
