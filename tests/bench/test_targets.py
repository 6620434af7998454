"""The benches' target verdicts: each target reads the right row and column, and a miss is reported as one."""

import json

from bench.common import RESULTS
from bench.targets import COMMITTED_EVAL, overhead_verdicts, routing_verdicts, scoring_verdicts


def wrk_row(target: str, concurrency: int, added_p50: float, added_p99: float, rps: float = 100.0) -> dict:
    return {
        "target": target,
        "concurrency": concurrency,
        "rps": rps,
        "added_p50_ms": added_p50,
        "added_p99_ms": added_p99,
    }


def ttfb_row(target: str, p50: float, p99: float) -> dict:
    return {"target": target, "concurrency": 64, "p50": p50, "p99": p99}


def held(verdicts: list, scope: str) -> dict[str, bool]:
    return {v.target: v.holds for v in verdicts if v.scope == scope}


def test_one_client_limits_are_inclusive_and_read_their_own_row():
    rows = [
        wrk_row("gateway_miss", 1, 15.0, 50.0),
        wrk_row("gateway_hit", 1, 2.01, 3.0),
        wrk_row("gateway_litellm_miss", 1, 15.01, 50.01),
        wrk_row("gateway_litellm_hit", 1, 2.0, 9.0),
    ]
    verdicts = overhead_verdicts(rows, [])
    assert held(verdicts, "auto") == {
        "c=1 cache miss: added p50 ≤ 15 ms": True,
        "c=1 cache miss: added p99 ≤ 50 ms": True,
        "c=1 cache hit: added p50 ≤ 2 ms": False,
    }
    assert held(verdicts, "LiteLLM") == {
        "c=1 cache miss: added p50 ≤ 15 ms": False,
        "c=1 cache miss: added p99 ≤ 50 ms": False,
        "c=1 cache hit: added p50 ≤ 2 ms": True,
    }


def test_loaded_comparison_needs_p50_and_p99_and_throughput_against_the_proxy():
    rows = [
        wrk_row("litellm_proxy", 64, 400.0, 2000.0, rps=110.0),
        wrk_row("gateway_miss", 64, 390.0, 2100.0, rps=120.0),  # p99 worse
        wrk_row("gateway_litellm_miss", 64, 350.0, 500.0, rps=109.0),  # slower
    ]
    streaming = [
        ttfb_row("litellm_proxy", 600.0, 2000.0),
        ttfb_row("gateway_miss", 900.0, 1000.0),  # p50 worse
        ttfb_row("gateway_litellm_miss", 500.0, 600.0),
    ]
    verdicts = overhead_verdicts(rows, streaming)
    assert held(verdicts, "auto") == {
        "c=64 cache miss: added p50, p99 ≤ the proxy's": False,
        "c=64 cache miss: req/s ≥ the proxy's": True,
        "c=64 cache miss, streamed: first byte p50, p99 ≤ the proxy's": False,
    }
    assert held(verdicts, "LiteLLM") == {
        "c=64 cache miss: added p50, p99 ≤ the proxy's": True,
        "c=64 cache miss: req/s ≥ the proxy's": False,
        "c=64 cache miss, streamed: first byte p50, p99 ≤ the proxy's": True,
    }


def test_scoring_targets_take_the_100_token_miss_and_the_slowest_hit():
    rows = [
        {"tokens": 20, "miss_ms": {"p50": 20.0}, "hit_ms": {"p50": 0.2}},
        {"tokens": 100, "miss_ms": {"p50": 14.9}, "hit_ms": {"p50": 0.3}},
        {"tokens": 2000, "miss_ms": {"p50": 30.0}, "hit_ms": {"p50": 1.2}},
    ]
    assert [v.holds for v in scoring_verdicts(rows)] == [True, False]


def source(aiq: float, knn: float, ridge: float, rows: dict, singles: list[dict]) -> dict:
    return {
        "n": 100,
        "aiq": aiq,
        "baseline_aiq": {"knn": knn, "ridge": ridge},
        "rows": [{"name": name, "quality": q, "cost": c} for name, (q, c) in rows.items()],
        "single_models": singles,
    }


def eval_result(mmlu_perf: tuple[float, float], rb_balanced: tuple[float, float], chat_aiq: float) -> dict:
    gemini = {"name": "gemini-1.5-pro-002", "quality": 0.75, "cost": 1.0, "aiq": 0.0}
    gpt4 = {"name": "gpt-4-1106-preview", "quality": 0.90, "cost": 10.0, "aiq": 0.0}
    fuse = {"name": "fuse", "quality": 0.70, "cost": 0.01, "aiq": 0.69}
    tiers = {"balanced": (0.70, 0.2), "cost": (0.6, 0.1)}
    return {
        "per_source": {
            "mmlu_pro": source(0.72, 0.70, 0.71, {"perf": mmlu_perf, **tiers}, [gemini]),
            "routerbench": source(0.85, 0.83, 0.86, {"perf": (0.9, 5.0), "balanced": rb_balanced}, [gpt4]),
            "alpaca_eval": source(chat_aiq, 0.6, 0.65, {"perf": (0.7, 0.1)}, [fuse]),
        }
    }


def test_routing_bars_are_measured_per_source_against_the_named_models_and_baselines():
    verdicts = routing_verdicts(eval_result(mmlu_perf=(0.7275, 0.70), rb_balanced=(0.85, 1.0), chat_aiq=0.70))
    assert [v.target.split(":")[0] for v in verdicts] == ["mmlu_pro", "routerbench", "alpaca_eval"] + [
        "mmlu_pro",
        "mmlu_pro",
        "routerbench",
        "alpaca_eval",
    ]
    # routerbench's AIQ 0.85 is under ridge's 0.86; every other bar holds, at its edge
    assert [v.holds for v in verdicts] == [True, False, True, True, True, True, True]
    failing = routing_verdicts(eval_result(mmlu_perf=(0.72, 0.71), rb_balanced=(0.849, 0.5), chat_aiq=0.69))
    assert [v.holds for v in failing] == [True, False, True, True, False, False, False]


def test_the_committed_results_measured_every_target():
    overhead = json.loads((RESULTS / "gateway_overhead.json").read_text())
    scoring = json.loads((RESULTS / "router_scoring.json").read_text())
    assert len(overhead_verdicts(overhead["rows"], overhead["streaming_ttfb_ms"])) == 18
    assert len(scoring_verdicts(scoring["rows"])) == 2
    assert len(routing_verdicts(json.loads(COMMITTED_EVAL.read_text()))) == 10
