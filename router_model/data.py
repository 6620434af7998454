"""Graded outcomes → one training table: the corpus's long format and RouterBench's wide files, merged over the
union of models (NaN where a model has no outcome), the paper's filters, the split per source and task."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from router_model.text import prompt_text

META_COLUMNS = {"sample_id", "prompt", "eval_name", "oracle_model_to_route_to"}
COST_SUFFIX = "|total_cost"
MIN_TASK_PROMPTS = 50
WIDE_SOURCE = "routerbench"
CORPUS_FILES = ("prompts.parquet", "outcomes.parquet", "models.csv")


@dataclass(frozen=True)
class OutcomeTable:
    """Prompts with each model's recorded quality (n, m) and dollar cost (n, m); NaN where a model has no outcome
    (quality) or no price (cost). `tasks` are `<source>/<task>`: the unit of the split and of Table 4."""

    prompt_ids: np.ndarray
    prompts: list[str]
    sources: np.ndarray
    tasks: np.ndarray
    models: tuple[str, ...]
    quality: np.ndarray
    cost: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def observed(self) -> np.ndarray:
        """(n, m) whether the model has a graded outcome for the prompt."""
        return ~np.isnan(self.quality)

    def subset(self, idx: np.ndarray) -> OutcomeTable:
        return OutcomeTable(
            prompt_ids=self.prompt_ids[idx],
            prompts=[self.prompts[i] for i in idx],
            sources=self.sources[idx],
            tasks=self.tasks[idx],
            models=self.models,
            quality=self.quality[idx],
            cost=self.cost[idx],
        )

    def select_models(self, models: Sequence[str]) -> OutcomeTable:
        """These models' columns, in this order; a model the table lacks gets an all-NaN column."""
        n = len(self)
        columns = [self.models.index(m) if m in self.models else None for m in models]

        def pick(values: np.ndarray) -> np.ndarray:
            out = np.full((n, len(columns)), np.nan)
            for k, j in enumerate(columns):
                if j is not None:
                    out[:, k] = values[:, j]
            return out

        return OutcomeTable(
            self.prompt_ids, self.prompts, self.sources, self.tasks, tuple(models), pick(self.quality), pick(self.cost)
        )

    def of_source(self, source: str) -> OutcomeTable:
        return self.subset(np.flatnonzero(self.sources == source))


@dataclass(frozen=True)
class Catalogue:
    """What the corpus's models.csv says of each model: per-token prices (NaN where unknown) and the names other
    sources gave it (`alias → model`)."""

    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def canonical(self, name: str) -> str:
        return self.aliases.get(name, name)

    def merged(self, other: Catalogue) -> Catalogue:
        return Catalogue({**other.prices, **self.prices}, {**other.aliases, **self.aliases})


@dataclass(frozen=True)
class FilterReport:
    rows_read: int
    small_tasks: dict[str, int]
    single_model: int
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
    raise ValueError(f"{path}: unsupported format {suffix!r}; use a corpus folder, .parquet, .csv or .pkl")


# --- the corpus's long format -------------------------------------------------------------------------------------


def read_catalogue(path: Path) -> Catalogue:
    """models.csv: `aliases` is `source:name; source:name`, each name another source's for the model."""
    frame = pd.read_csv(path)
    prices = {
        str(r.model): (float(r.input_cost_per_token), float(r.output_cost_per_token))
        for r in frame.itertuples(index=False)
    }
    aliases: dict[str, str] = {}
    for r in frame.itertuples(index=False):
        for item in str(r.aliases if isinstance(r.aliases, str) else "").split(";"):
            name = item.strip().split(":", 1)[-1]
            if name and name != r.model:
                aliases.setdefault(name, str(r.model))
    return Catalogue(prices, aliases)


def estimated_completion_tokens(outcomes: pd.DataFrame) -> pd.Series:
    """Each row's completion tokens: recorded, else the model's median over its rows that have them, else the
    median over every row that has them (a source that kept no output texts)."""
    recorded = outcomes["completion_tokens"].astype("float64")
    per_model = recorded.groupby(outcomes["model"]).transform("median")
    return recorded.fillna(per_model).fillna(float(recorded.median()))


def read_corpus(folder: Path) -> tuple[OutcomeTable, Catalogue]:
    """prompts.parquet + outcomes.parquet + models.csv → one row per prompt. A row's cost is its recorded cost,
    else prices × tokens with estimated completion tokens; NaN where the model has no price."""
    missing = [name for name in CORPUS_FILES if not (folder / name).exists()]
    if missing:
        raise ValueError(f"{folder}: not a corpus folder (missing {', '.join(missing)})")
    prompts = pd.read_parquet(folder / "prompts.parquet")
    outcomes = pd.read_parquet(folder / "outcomes.parquet")
    catalogue = read_catalogue(folder / "models.csv")
    models = tuple(sorted(set(outcomes["model"])))
    price_in = outcomes["model"].map(lambda m: catalogue.prices.get(m, (np.nan, np.nan))[0])
    price_out = outcomes["model"].map(lambda m: catalogue.prices.get(m, (np.nan, np.nan))[1])
    priced = price_in * outcomes["prompt_tokens"].astype("float64") + price_out * estimated_completion_tokens(outcomes)
    cost = outcomes["cost"].astype("float64").fillna(priced)
    row = pd.Index(prompts["prompt_id"]).get_indexer(outcomes["prompt_id"])
    if (row < 0).any():
        raise ValueError(f"{folder}: outcomes name prompts that prompts.parquet lacks")
    col = pd.Index(models).get_indexer(outcomes["model"])
    quality = np.full((len(prompts), len(models)), np.nan)
    costs = np.full_like(quality, np.nan)
    quality[row, col] = outcomes["quality"].to_numpy(dtype=np.float64)
    costs[row, col] = cost.to_numpy(dtype=np.float64)
    table = OutcomeTable(
        prompt_ids=prompts["prompt_id"].astype(str).to_numpy(),
        prompts=prompts["prompt"].astype(str).tolist(),
        sources=prompts["source"].astype(str).to_numpy(),
        tasks=(prompts["source"].astype(str) + "/" + prompts["task"].astype(str)).to_numpy(),
        models=models,
        quality=quality,
        cost=costs,
    )
    return table, catalogue


# --- RouterBench's wide format ------------------------------------------------------------------------------------


def model_columns(frame: pd.DataFrame) -> tuple[str, ...]:
    """Models are the columns that have a matching `<model>|total_cost` column."""
    models = tuple(c for c in frame.columns if f"{c}{COST_SUFFIX}" in frame.columns)
    if not models:
        raise ValueError("no model columns: expected '<model>' quality and '<model>|total_cost' pairs")
    return models


def from_wide(frame: pd.DataFrame, catalogue: Catalogue = Catalogue()) -> OutcomeTable:
    """A RouterBench table: one column per model and one `<model>|total_cost` beside it; model names are mapped
    to the corpus's through `catalogue`'s aliases, and prompt ids made the corpus's (`routerbench/<task>/<id>`)."""
    missing = {"sample_id", "prompt", "eval_name"} - set(frame.columns)
    if missing:
        raise ValueError(f"missing columns: {', '.join(sorted(missing))}")
    columns = model_columns(frame)
    tasks = frame["eval_name"].astype(str).to_numpy()
    return OutcomeTable(
        prompt_ids=np.array(
            [f"{WIDE_SOURCE}/{t}/{s}" for t, s in zip(tasks, frame["sample_id"].astype(str), strict=True)]
        ),
        prompts=[prompt_text(p) for p in frame["prompt"]],
        sources=np.full(len(frame), WIDE_SOURCE),
        tasks=np.array([f"{WIDE_SOURCE}/{t}" for t in tasks]),
        models=tuple(catalogue.canonical(c) for c in columns),
        quality=frame[list(columns)].to_numpy(dtype=np.float64),
        cost=frame[[f"{c}{COST_SUFFIX}" for c in columns]].to_numpy(dtype=np.float64),
    )


# --- reading and merging ------------------------------------------------------------------------------------------


def read_tables(paths: Iterable[Path], catalogue: Catalogue = Catalogue()) -> tuple[OutcomeTable, Catalogue]:
    """Corpus folders and wide files as one table over the union of their models; a prompt id met twice keeps its
    first reading (the RouterBench subset's rows are in the corpus too). Corpus folders are read first, so that
    their catalogue names the wide files' models."""
    paths = sorted((Path(p) for p in paths), key=lambda p: not p.is_dir())
    if not paths:
        raise ValueError("no data given")
    tables = []
    for path in paths:
        if path.is_dir():
            table, found = read_corpus(path)
            catalogue = found.merged(catalogue)
        else:
            table = from_wide(read_frame(path), catalogue)
        tables.append(table)
    return merge(tables), catalogue


def merge(tables: Sequence[OutcomeTable]) -> OutcomeTable:
    """A later table adds only prompts of sources no earlier table holds: the corpus dropped some of its sources'
    prompts on purpose (they equal held-out prompts), and a wide file must not bring them back."""
    models = tuple(sorted({m for t in tables for m in t.models}))
    parts: list[OutcomeTable] = []
    seen_sources: set[str] = set()
    for table in tables:
        keep = ~np.isin(table.sources, list(seen_sources))
        seen_sources.update(table.sources.tolist())
        parts.append(table.subset(np.flatnonzero(keep)).select_models(models))
    if len(parts) == 1:
        return parts[0]
    return OutcomeTable(
        prompt_ids=np.concatenate([p.prompt_ids for p in parts]),
        prompts=[prompt for p in parts for prompt in p.prompts],
        sources=np.concatenate([p.sources for p in parts]),
        tasks=np.concatenate([p.tasks for p in parts]),
        models=models,
        quality=np.concatenate([p.quality for p in parts]),
        cost=np.concatenate([p.cost for p in parts]),
    )


def apply_filters(data: OutcomeTable) -> tuple[OutcomeTable, FilterReport]:
    """The paper's filters where they apply: tasks under 50 prompts, prompts no model got any credit on (they say
    nothing about ranking), and prompts graded on fewer than two models (nothing to rank). Chinese prompts stay: the
    router must route other languages too, and the corpus grades them."""
    names, counts = np.unique(data.tasks, return_counts=True)
    small = {str(n): int(c) for n, c in zip(names, counts, strict=True) if c < MIN_TASK_PROMPTS}
    in_small = np.isin(data.tasks, list(small))
    single = data.observed.sum(axis=1) < 2
    unsolved = ~single & (np.nan_to_num(data.quality, nan=0.0).max(axis=1) <= 0)
    keep = ~(in_small | single | unsolved)
    report = FilterReport(
        rows_read=len(data),
        small_tasks=small,
        single_model=int((single & ~in_small).sum()),
        unsolved=int((unsolved & ~in_small).sum()),
        rows_kept=int(keep.sum()),
    )
    return data.subset(np.flatnonzero(keep)), report


def load_data(
    paths: Path | Iterable[Path], catalogue: Catalogue = Catalogue()
) -> tuple[OutcomeTable, FilterReport, Catalogue]:
    """Read, merge and filter: what training and evaluation start from."""
    table, catalogue = read_tables([paths] if isinstance(paths, Path | str) else paths, catalogue)
    kept, report = apply_filters(table)
    return kept, report, catalogue


def read_calibration_rows(path: Path, backend: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Prompts, quality and optional cost for one model: JSONL {prompt, quality, cost?}, a corpus folder (the rows
    of the model named `backend`) or RouterBench columns."""
    path = Path(path)
    if path.is_dir():
        return _corpus_rows(path, backend)
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


def _corpus_rows(folder: Path, model: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    table, _ = read_corpus(folder)
    if model not in table.models:
        raise ValueError(f"{folder}: no outcomes of {model!r} (the corpus names its models as in models.csv)")
    j = table.models.index(model)
    rows = np.flatnonzero(table.observed[:, j])
    cost = table.cost[rows, j]
    return [table.prompts[i] for i in rows], table.quality[rows, j], None if np.isnan(cost).any() else cost


# --- the split ----------------------------------------------------------------------------------------------------


def stratified_split(
    groups: np.ndarray, keys: Sequence[str] | np.ndarray, seed: int, fractions: tuple[float, float] = (0.70, 0.15)
) -> dict[str, np.ndarray]:
    """70/15/15 train/val/test indices, drawn per group (source and task), reproducible from `seed`.

    Within a group, rows are ordered by a hash of (seed, key), not by their position: a row's part depends only on
    its prompt id and its group's size, so `llmrank eval` finds the same held-out rows in any file that holds the
    group, read alone or with others."""
    rank = np.array([_hash(seed, key) for key in keys], dtype=np.uint64)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for name in sorted(set(groups.tolist())):
        members = np.flatnonzero(groups == name)
        idx = members[np.argsort(rank[members], kind="stable")]
        n_train = int(round(fractions[0] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts["train"] += idx[:n_train].tolist()
        parts["val"] += idx[n_train : n_train + n_val].tolist()
        parts["test"] += idx[n_train + n_val :].tolist()
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in parts.items()}


def stratified_share(
    idx: np.ndarray, groups: np.ndarray, keys: Sequence[str] | np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """A random `fraction` of the rows `idx`, taken group by group (for learning curves): the training part of a
    `fraction`/0/rest split of those rows."""
    chosen = stratified_split(groups[idx], [keys[i] for i in idx], seed, (fraction, 0.0))["train"]
    return np.sort(idx[chosen])


def _hash(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "little")
