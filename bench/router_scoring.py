"""In-process router scoring latency: features + embedding + network per prompt, cache miss and hit.

python -m bench.router_scoring [--repeats 200]
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

from bench.common import percentiles, write_results
from bench.targets import print_verdicts, scoring_verdicts
from gateway.settings import DEFAULT_CHECKPOINT
from router_model.encoder import Encoder
from router_model.router import PromptVector, Router
from router_model.text import embedding_text

WORDS = "the model should answer which option best explains why the plant grows toward light".split()


def prompt_of(tokens: int, router: Router, salt: int) -> str:
    """A prompt of about `tokens` encoder tokens; `salt` makes each one unique (no cache effects)."""
    return f"{salt} {body_of(tokens - 3, router)}?"


@functools.cache
def body_of(tokens: int, router: Router) -> str:
    """The shortest run of WORDS with at least `tokens` encoder tokens (binary search on the word count)."""

    def text(n: int) -> str:
        return " ".join(WORDS[i % len(WORDS)] for i in range(n))

    low, high = 0, tokens
    while low < high:
        middle = (low + high) // 2
        if router.encoder.count_tokens(text(middle)) < tokens:
            low = middle + 1
        else:
            high = middle
    return text(low)


def time_ms(fn, *args) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - started) * 1000


def stage_times(prompts: list[str], router: Router) -> dict[str, float]:
    """Median ms per stage of a cache miss: encoder, features, network."""
    samples: dict[str, list[float]] = {"encoder": [], "features": [], "network": []}
    for prompt in prompts:
        started = time.perf_counter()
        embedding = router.encoder.encode([embedding_text(prompt)])
        encoded = time.perf_counter()
        features = router.featurizer.transform([prompt], embedding)
        featurized = time.perf_counter()
        router.quality([PromptVector(features[0], embedding[0])])
        done = time.perf_counter()
        for name, (a, b) in zip(samples, ((started, encoded), (encoded, featurized), (featurized, done)), strict=True):
            samples[name].append((b - a) * 1000)
    return {name: percentiles(values)["p50"] for name, values in samples.items()}


def encoder_runtimes(prompts: list[str], router: Router) -> dict[str, dict[str, float]]:
    """The served encoder against the fp32 torch model it approximates and against itself with the token window
    the network was trained with, alternated so that all see the same machine."""
    served, trained_window = router.encoder, int(router.checkpoint.encoder.get("trained_max_tokens", 0))
    encoders = {f"{served.precision}, last {served.max_tokens} tokens (served)": served}
    if served.precision != "fp32":
        encoders[f"fp32 (torch), last {served.max_tokens}"] = Encoder(served.max_tokens, precision="fp32")
    if trained_window and trained_window != served.max_tokens:
        encoders[f"{served.precision}, last {trained_window} tokens"] = Encoder(
            trained_window, precision=served.precision
        )
    samples: dict[str, list[float]] = {name: [] for name in encoders}
    for prompt in prompts:
        for name, encoder in encoders.items():
            samples[name].append(time_ms(encoder.encode, [prompt]))
    return {name: percentiles(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    router = Router.load(DEFAULT_CHECKPOINT)
    n_features = len(router.featurizer.names)
    for _ in range(10):
        router.quality(router.vectorize(["warm up"]))
    rows: list[dict[str, Any]] = []
    for tokens in (20, 100, 500, 2000):
        repeats = args.repeats if tokens <= 500 else max(30, args.repeats // 4)
        prompts = [prompt_of(tokens, router, i) for i in range(repeats)]
        miss = [time_ms(lambda p: router.quality(router.vectorize([p])), p) for p in prompts]
        blob = router.vectorize([prompts[0]])[0].to_bytes()
        hit = [time_ms(lambda b: router.quality([PromptVector.from_bytes(b, n_features)]), blob) for _ in prompts]
        rows.append({"tokens": tokens, "miss_ms": percentiles(miss), "hit_ms": percentiles(hit)})
    batch = [prompt_of(100, router, i) for i in range(256)]
    started = time.perf_counter()
    router.quality(router.vectorize(batch))
    throughput = len(batch) / (time.perf_counter() - started)

    stages = stage_times([prompt_of(100, router, 20_000 + i) for i in range(args.repeats)], router)
    runtimes = encoder_runtimes([prompt_of(100, router, 10_000 + i) for i in range(args.repeats)], router)

    print(f"{'tokens':>7} | {'miss p50':>9} {'p90':>7} {'p99':>7} | {'hit p50':>8} {'p90':>7} {'p99':>7}   (ms)")
    for r in rows:
        m, h = r["miss_ms"], r["hit_ms"]
        print(
            f"{r['tokens']:>7} | {m['p50']:>9.2f} {m['p90']:>7.2f} {m['p99']:>7.2f} |"
            f" {h['p50']:>8.3f} {h['p90']:>7.3f} {h['p99']:>7.3f}"
        )
    print(f"batch encoding throughput (256 prompts of ~100 tokens): {throughput:.0f} prompts/s")
    print("encoder alone, 100 tokens, alternated prompt by prompt (ms):")
    for name, r in runtimes.items():
        print(f"  {name:<34} p50 {r['p50']:6.2f}  p90 {r['p90']:6.2f}  p99 {r['p99']:6.2f}")
    print("a 100-token miss by stage, p50 (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    path = write_results(
        "router_scoring",
        {
            "rows": rows,
            "batch_throughput_prompts_per_s": throughput,
            "encoder_runtimes_100_tokens_ms": runtimes,
            "miss_stages_100_tokens_p50_ms": stages,
        },
    )
    print_verdicts(scoring_verdicts(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
