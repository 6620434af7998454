"""Shared bench helpers: percentile tables and JSON results under bench/results/."""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pick(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {"p50": statistics.median(ordered), "p90": pick(90), "p99": pick(99), "n": len(ordered)}


# The libraries a result depends on, recorded with each result: constraints.txt pins them, but a result outlives a pin.
MEASURED_PACKAGES = (
    "torch", "onnxruntime", "transformers", "tokenizers", "numpy", "litellm", "openai", "starlette", "uvicorn",
    "pydantic", "aiohttp", "redis", "structlog",
)  # fmt: skip


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_vector_flags": cpu_vector_flags(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: metadata.version(name) for name in MEASURED_PACKAGES},
    }


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor()


def cpu_vector_flags() -> list[str]:
    """AVX-512 and VNNI roughly double ONNX Runtime's int8 kernels: the encoder's speed turns on them."""
    return sorted(f for f in _cpuinfo().get("flags", "").split() if f.startswith(("avx", "amx")))


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first CPU's fields in /proc/cpuinfo (empty where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for key, _, value in (line.partition(":") for line in lines):
        fields.setdefault(key.strip(), value.strip())
    return fields


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
