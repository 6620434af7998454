"""POST /v1/feedback: a score for an earlier routed request, stored with its features."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from structlog.testing import capture_logs

from gateway.config_store import ConfigStore
from gateway.feedback import read_feedback
from gateway.metrics import Metrics
from gateway.settings import DEFAULT_CHECKPOINT
from router_model.commands import run_calibrate_from_feedback
from tests.conftest import REDIS_URL, backend_entry, standard_backends, write_config


def routed_request_id(url: str) -> str:
    response = httpx.post(
        f"{url}/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "2+2?"}]}
    )
    assert response.status_code == 200
    return response.headers["x-request-id"]


def test_feedback_is_stored_in_the_redis_stream_with_the_features(gateway_factory, upstream, redis_db, tmp_path):
    base, _ = upstream
    url = gateway_factory(standard_backends(base), feedback_file=tmp_path / "feedback.jsonl")
    request_id = routed_request_id(url)
    response = httpx.post(f"{url}/v1/feedback", json={"request_id": request_id, "score": 0.75})
    assert response.status_code == 200 and response.json()["status"] == "recorded"
    entries = read_feedback(REDIS_URL, tmp_path / "feedback.jsonl")
    assert [(e["request_id"], e["score"]) for e in entries] == [(request_id, 0.75)]
    assert entries[0]["backend"] == response.json()["backend"] and len(entries[0]["vector"]) > 1000
    assert not (tmp_path / "feedback.jsonl").exists()


@pytest.mark.parametrize("stream", [False, True])
def test_feedback_on_a_fallback_answer_is_about_the_backend_that_answered(
    gateway_factory, upstream, redis_db, tmp_path, stream
):
    """The router's first choice failed and the next one answered: a score for that answer must train the next
    one's profile, not the failed one's."""
    base, control = upstream
    control.behaviour["strong"] = "error500"
    strong, mid, cheap = standard_backends(base)
    ordered = [strong | {"quality_offset": 1.0}, mid, cheap | {"quality_offset": -1.0}]  # whatever the network says
    url = gateway_factory(ordered, feedback_file=tmp_path / "feedback.jsonl")
    body = {"model": "auto", "stream": stream, "messages": [{"role": "user", "content": "Prove that 17 is prime."}]}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers={"X-Budget-Tier": "perf"}) as answer:
        answer.read()
    assert answer.status_code == 200 and answer.headers["x-llmrank-model"] == "mid"
    assert [name for name, _ in control.received[:2]] == ["strong", "mid"]  # strong was the first choice
    response = httpx.post(f"{url}/v1/feedback", json={"request_id": answer.headers["x-request-id"], "score": 1})
    assert response.json()["backend"] == "mid"
    [entry] = read_feedback(REDIS_URL, tmp_path / "feedback.jsonl")
    assert (entry["backend"], entry["profile"]) == ("mid", "gpt-3.5-turbo-1106")
    # /metrics puts the router's estimates beside the outcome, all under the backend that answered
    metrics = httpx.get(f"{url}/metrics").text
    assert 'llmrank_predicted_quality_count{backend="mid",tier="perf"} 1.0' in metrics
    assert 'llmrank_feedback_score_sum{backend="mid"} 1.0' in metrics
    assert 'llmrank_estimated_spend_dollars_total{backend="mid"}' in metrics
    assert 'backend="strong"' not in metrics.split("# HELP llmrank_estimated_spend_dollars")[1].split("# HELP")[0]


def test_without_redis_feedback_goes_to_the_local_file(gateway_factory, upstream, tmp_path):
    base, _ = upstream
    file = tmp_path / "feedback.jsonl"
    url = gateway_factory(standard_backends(base), redis_url=None, feedback_file=file)
    request_id = routed_request_id(url)
    assert httpx.post(f"{url}/v1/feedback", json={"request_id": request_id, "score": 1}).status_code == 200
    assert [e["score"] for e in read_feedback(None, file)] == [1]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"request_id": "req_never_seen", "score": 0.5}, 404, "request_id"),
        ({"request_id": "x", "score": 1.5}, 400, "score"),
        ({"request_id": "x", "score": -0.1}, 400, "score"),
        ({"request_id": "x"}, 400, "score"),
        ({"score": 0.5}, 400, "request_id"),
    ],
)
def test_bad_feedback_is_an_openai_error(gateway_factory, upstream, body, status, param):
    base, _ = upstream
    url = gateway_factory(standard_backends(base))
    response = httpx.post(f"{url}/v1/feedback", json=body)
    assert response.status_code == status
    assert response.json()["error"]["param"] == param


def test_a_borrowed_profile_is_logged_once(tmp_path):
    base = "http://127.0.0.1:9"
    backends = [backend_entry("new-model", "gpt-4-1106-preview", base, 1e-6, quality_offset=-0.05)]
    write_config(tmp_path, backends)
    with capture_logs() as logs:
        store = ConfigStore(tmp_path / "models.yaml", tmp_path / "tiers.yaml", ["gpt-4-1106-preview"], {}, Metrics())
        (tmp_path / "models.yaml").write_text((tmp_path / "models.yaml").read_text() + "\n")
        store._stamp = ()
        assert not store.reload_if_changed()  # a change is read once a second look finds it unchanged
        assert store.reload_if_changed()
    borrowed = [e for e in logs if e["event"] == "profile_borrowed"]
    assert len(borrowed) == 1
    assert borrowed[0]["backend"] == "new-model" and borrowed[0]["quality_offset"] == -0.05
    pool = [e for e in logs if e["event"] == "backend_profiles"]
    assert (pool[0]["backends"], pool[0]["own_profile"]) == (1, 0)
    assert pool[0]["borrowed"] == ["new-model"]


def test_a_backend_named_by_routerbenchs_old_name_has_its_own_profile(tmp_path, router):
    """`claude-v2` is RouterBench's name for claude-2: scored by claude-2's profile, it borrows nothing."""
    base = "http://127.0.0.1:9"
    backends = [
        backend_entry("claude-v2", "claude-v2", base, 8e-6),
        backend_entry("meta/llama-2-70b-chat", "meta/llama-2-70b-chat", base, 9e-7),
        backend_entry("new-model", "claude-v2", base, 1e-6),
    ]
    write_config(tmp_path, backends)
    with capture_logs() as logs:
        store = ConfigStore(tmp_path / "models.yaml", tmp_path / "tiers.yaml", router.profile_names, {}, Metrics())
    assert [b.profile for b in store.current.registry.enabled] == [
        "claude-2",
        "meta-llama/Llama-2-70b-chat-hf",
        "claude-2",
    ]
    assert store.current.borrowed == {"new-model"}
    pool = next(e for e in logs if e["event"] == "backend_profiles")
    assert (pool["own_profile"], pool["borrowed"]) == (2, ["new-model"])
    assert [e["backend"] for e in logs if e["event"] == "profile_borrowed"] == ["new-model"]


def test_the_shipped_pool_says_in_one_line_that_no_profile_is_borrowed(router):
    from gateway.settings import DEFAULT_CONFIG_DIR

    with capture_logs() as logs:
        ConfigStore(
            DEFAULT_CONFIG_DIR / "models.yaml", DEFAULT_CONFIG_DIR / "tiers.yaml", router.profile_names, {}, Metrics()
        )
    assert [e["event"] for e in logs] == ["backend_profiles"]
    assert (logs[0]["backends"], logs[0]["own_profile"], logs[0]["borrowed"]) == (9, 9, [])


def test_calibrate_from_feedback_fits_a_profile_per_backend(gateway_factory, upstream, tmp_path, router):
    """Scores sent through the API become a profile the router can load (written to a copy of the checkpoint)."""
    base, _ = upstream
    file = tmp_path / "feedback.jsonl"
    url = gateway_factory(
        [backend_entry("solo", "gpt-3.5-turbo-1106", f"{base}/b/solo/v1", 1e-6)], redis_url=None, feedback_file=file
    )
    for i in range(12):
        response = httpx.post(
            f"{url}/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": f"q{i}?"}]}
        )
        score = 1.0 if i % 2 else 0.0
        assert (
            httpx.post(
                f"{url}/v1/feedback", json={"request_id": response.headers["x-request-id"], "score": score}
            ).status_code
            == 200
        )
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(DEFAULT_CHECKPOINT, checkpoint)
    entries = read_feedback(None, file)
    assert {e["router_version"] for e in entries} == {router.version}
    # scores routed by another network carry vectors this one cannot read: they must not join the fit
    foreign = [e | {"router_version": "0123456789abcdef+int8-fused+tail64"} for e in entries]
    written = run_calibrate_from_feedback(entries + foreign, checkpoint)
    assert [p.name for p in written] == ["solo.json"]
    card = json.loads(written[0].read_text())
    assert card["rows"] == 12 and card["source"] == "feedback"
