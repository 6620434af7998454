"""Self-describing checkpoints: `save(dir)` writes config, signals and heads; `load(dir)` rebuilds them.

Layout: router.json (models and their other names, training sources, features, encoder, heads, the feature judge
if any), signals.npz (neighbour bank, difficulty and baseline ridges, cost model), heads/<name>.pt (float16 weights),
card.json (data, split, seed, λ, metrics).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from router_model.costs import CostModel
from router_model.features import Featurizer, FittedSignals
from router_model.model import LLMRankConfig, LLMRankNet

FORMAT_VERSION = 2


@dataclass
class Head:
    """One trained network and the λ its targets used."""

    net: LLMRankNet
    lam: float


@dataclass
class Checkpoint:
    models: tuple[str, ...]
    featurizer: Featurizer
    cost_model: CostModel
    heads: dict[str, Head]
    encoder: dict[str, Any]
    card: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # another source's name for a model → its name here
    sources: tuple[str, ...] = ()  # the training sources, in the order of `signals.source_prior`

    @property
    def version(self) -> str:
        """Changes whenever the weights or features change; part of every feature-cache key."""
        return str(self.card.get("version", "unversioned"))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        (directory / "heads").mkdir(parents=True, exist_ok=True)
        for old in (directory / "heads").glob("*.pt"):
            old.unlink()
        for name, head in self.heads.items():
            round_to_float16(head.net)
            state = {k: v.to(torch.float16) for k, v in head.net.state_dict().items()}
            torch.save(state, directory / "heads" / f"{name}.pt")
        s = self.featurizer.signals
        np.savez_compressed(
            directory / "signals.npz",
            bank_embeddings=s.bank_embeddings.astype(np.int8),
            bank_quality=s.bank_quality.astype(np.float16),
            bank_offsets=s.bank_offsets,
            model_mean=s.model_mean,
            difficulty_w=s.difficulty_w,
            difficulty_cuts=s.difficulty_cuts,
            ridge_w=s.ridge_w,
            source_prior=s.source_prior,
            cost_intercept=self.cost_model.intercept,
            cost_per_char=self.cost_model.per_char,
        )
        meta = {
            "format_version": FORMAT_VERSION,
            "models": list(self.models),
            "aliases": self.aliases,
            "sources": list(self.sources),
            "source_input": bool(self.featurizer.sources),
            "features": [asdict(f) for f in self.featurizer.infos],
            "encoder": self.encoder,
            "heads": {name: {"lambda": h.lam, "config": asdict(h.net.config)} for name, h in self.heads.items()},
        }
        if self.featurizer.judge_model:
            meta["judge"] = self.featurizer.judge_model
        _write_json(directory / "router.json", meta)
        _write_json(directory / "card.json", self.card)


@torch.no_grad()
def round_to_float16(net: LLMRankNet) -> None:
    """Weights are stored as float16; round the live net too so a reload scores identically."""
    for tensor in net.state_dict().values():
        tensor.copy_(tensor.to(torch.float16).to(tensor.dtype))


def load_checkpoint(directory: Path) -> Checkpoint:
    directory = Path(directory)
    meta = json.loads((directory / "router.json").read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory}: checkpoint format {meta.get('format_version')} != {FORMAT_VERSION}")
    models = tuple(meta["models"])
    with np.load(directory / "signals.npz") as arrays:
        signals = FittedSignals(
            bank_embeddings=arrays["bank_embeddings"],
            bank_quality=arrays["bank_quality"].astype(np.float32),
            bank_offsets=arrays["bank_offsets"],
            model_mean=arrays["model_mean"],
            difficulty_w=arrays["difficulty_w"],
            difficulty_cuts=arrays["difficulty_cuts"],
            ridge_w=arrays["ridge_w"],
            source_prior=arrays["source_prior"],
        )
        cost_model = CostModel(arrays["cost_intercept"], arrays["cost_per_char"])
    sources = tuple(meta["sources"])
    featurizer = Featurizer(models, signals, meta.get("judge"), sources if meta["source_input"] else ())
    names = [f["name"] for f in meta["features"]]
    if names != featurizer.names:
        raise ValueError(f"{directory}: checkpoint features differ from this code's features")
    heads = {name: _load_head(directory / "heads" / f"{name}.pt", spec) for name, spec in meta["heads"].items()}
    card_path = directory / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {}
    return Checkpoint(
        models,
        featurizer,
        cost_model,
        heads,
        meta["encoder"],
        card,
        aliases=dict(meta["aliases"]),
        sources=sources,
    )


def _load_head(path: Path, spec: dict[str, Any]) -> Head:
    net = LLMRankNet(LLMRankConfig(**spec["config"]))
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    net.eval()
    return Head(net=net, lam=float(spec["lambda"]))


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
