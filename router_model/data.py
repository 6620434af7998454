"""RouterBench rows → arrays: loading (Parquet, CSV, the official pickles), the paper's filters, the split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from router_model.text import has_cjk, prompt_text

META_COLUMNS = {"sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}
COST_SUFFIX = "|total_cost"
MIN_BENCHMARK_PROMPTS = 50


@dataclass(frozen=True)
class RouterBenchData:
    """Prompts with each model's recorded quality (n, m) and dollar cost (n, m)."""

    sample_ids: np.ndarray
    prompts: list[str]
    benchmarks: np.ndarray
    models: tuple[str, ...]
    quality: np.ndarray
    cost: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: np.ndarray) -> RouterBenchData:
        return RouterBenchData(
            sample_ids=self.sample_ids[idx],
            prompts=[self.prompts[i] for i in idx],
            benchmarks=self.benchmarks[idx],
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
        )

    def select_models(self, models: tuple[str, ...]) -> RouterBenchData:
        cols = [self.models.index(m) for m in models]
        return RouterBenchData(
            self.sample_ids, self.prompts, self.benchmarks, models, self.quality[:, cols], self.cost[:, cols]
        )


@dataclass(frozen=True)
class FilterReport:
    rows_read: int
    small_benchmarks: dict[str, int]
    cjk_prompts: int
    missing_scores: int
    unsolved: int
    rows_kept: int


def read_frame(path: Path) -> pd.DataFrame:
    """Read a RouterBench table in any of its published forms."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in {".pkl", ".pickle"}:
        frame = pd.read_pickle(path)
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"{path}: expected a pandas DataFrame, got {type(frame).__name__}")
        return frame
    raise ValueError(f"{path}: unsupported format {suffix!r}; use .parquet, .csv or .pkl")


def read_calibration_rows(path: Path, backend: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Prompts, quality and optional cost for one model: JSONL {prompt, quality, cost?} or RouterBench columns."""
    path = Path(path)
    if path.suffix.lower() in {".jsonl", ".json"}:
        frame = pd.read_json(path, lines=True)
        quality_col, cost_col = "quality", "cost"
    else:
        frame = read_frame(path)
        quality_col, cost_col = backend, f"{backend}{COST_SUFFIX}"
    missing = {"prompt", quality_col} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    frame = frame.dropna(subset=[quality_col])
    quality = frame[quality_col].to_numpy(dtype=np.float64)
    if ((quality < 0) | (quality > 1)).any():
        raise ValueError(f"{path}: quality must lie in [0, 1]")
    cost = frame[cost_col].to_numpy(dtype=np.float64) if cost_col in frame.columns else None
    if cost is not None and np.isnan(cost).any():
        cost = None
    return [prompt_text(p) for p in frame["prompt"]], quality, cost


def model_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """Models are the columns that have a matching `<model>|total_cost` column."""
    models = tuple(c for c in frame.columns if f"{c}{COST_SUFFIX}" in frame.columns)
    if not models:
        raise ValueError("no model columns: expected '<model>' quality and '<model>|total_cost' pairs")
    return models


def from_frame(frame: pd.DataFrame, models: tuple[str, ...] | None = None) -> RouterBenchData:
    missing = {"sample_id", "prompt", "eval_name"} - set(frame.columns)
    if missing:
        raise ValueError(f"missing columns: {', '.join(sorted(missing))}")
    models = models or model_columns(frame)
    return RouterBenchData(
        sample_ids=frame["sample_id"].astype(str).to_numpy(),
        prompts=[prompt_text(p) for p in frame["prompt"]],
        benchmarks=frame["eval_name"].astype(str).to_numpy(),
        models=models,
        quality=frame[list(models)].to_numpy(dtype=np.float64),
        cost=frame[[f"{m}{COST_SUFFIX}" for m in models]].to_numpy(dtype=np.float64),
    )


def apply_filters(data: RouterBenchData) -> tuple[RouterBenchData, FilterReport]:
    """The paper's filters: benchmarks under 50 prompts, Chinese prompts, prompts no model solved.

    Rows with a missing quality or cost for any model are dropped too: they cannot be scored fairly.
    """
    names, counts = np.unique(data.benchmarks, return_counts=True)
    small = {str(n): int(c) for n, c in zip(names, counts, strict=True) if c < MIN_BENCHMARK_PROMPTS}
    in_small = np.isin(data.benchmarks, list(small))
    cjk = np.array([has_cjk(p) for p in data.prompts], dtype=bool)
    missing = np.isnan(data.quality).any(axis=1) | np.isnan(data.cost).any(axis=1)
    unsolved = ~missing & (np.nan_to_num(data.quality).max(axis=1) <= 0)
    keep = ~(in_small | cjk | missing | unsolved)
    report = FilterReport(
        rows_read=len(data),
        small_benchmarks=small,
        cjk_prompts=int((cjk & ~in_small).sum()),
        missing_scores=int((missing & ~in_small & ~cjk).sum()),
        unsolved=int((unsolved & ~in_small & ~cjk).sum()),
        rows_kept=int(keep.sum()),
    )
    return data.subset(np.flatnonzero(keep)), report


def load_routerbench(path: Path, models: tuple[str, ...] | None = None) -> tuple[RouterBenchData, FilterReport]:
    return apply_filters(from_frame(read_frame(Path(path)), models))


def stratified_split(
    benchmarks: np.ndarray, seed: int, fractions: tuple[float, float] = (0.70, 0.15)
) -> dict[str, np.ndarray]:
    """70/15/15 train/val/test indices, stratified by benchmark, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for name in sorted(set(benchmarks.tolist())):
        idx = rng.permutation(np.flatnonzero(benchmarks == name))
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts["train"] += idx[:n_train].tolist()
        parts["val"] += idx[n_train : n_train + n_val].tolist()
        parts["test"] += idx[n_train + n_val :].tolist()
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in parts.items()}


def stratified_share(idx: np.ndarray, benchmarks: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A random `fraction` of the rows `idx`, taken benchmark by benchmark (for learning curves): the training part
    of a `fraction`/0/rest split of those rows."""
    return np.sort(idx[stratified_split(benchmarks[idx], seed, (fraction, 0.0))["train"]])
