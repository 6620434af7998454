"""Inference: prompt → (features, embedding) → per-profile predicted quality. The gateway's one dependency."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from router_model.calibrate import CALIBRATED_DIR, CalibratedProfile, file_stem, load_calibrated
from router_model.checkpoint import Checkpoint, load_checkpoint
from router_model.encoder import DEFAULT_CACHE_DIR, Encoder, encoder_for
from router_model.explain import Attribution, attributions
from router_model.judge import DEFAULT_CONNECTION, FeatureJudge, JudgeConnection, unjudged
from router_model.text import embedding_text

DEFAULT_HEAD = "quality"


@dataclass(frozen=True)
class PromptVector:
    """What the feature cache stores for a prompt: everything the network needs."""

    features: np.ndarray  # (F,)
    embedding: np.ndarray  # (384,)

    def to_bytes(self) -> bytes:
        return np.concatenate([self.features, self.embedding]).astype(np.float32).tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes, n_features: int) -> PromptVector:
        flat = np.frombuffer(blob, dtype=np.float32)
        return cls(features=flat[:n_features].copy(), embedding=flat[n_features:].copy())


class Router:
    """Scores prompts with a checkpoint's heads; `quality(...)` is q̂ per model profile."""

    def __init__(
        self,
        checkpoint: Checkpoint,
        encoder: Encoder,
        calibrated: Sequence[CalibratedProfile] = (),
        judge_connection: JudgeConnection = DEFAULT_CONNECTION,
        cache_dir: Path = DEFAULT_CACHE_DIR,
    ) -> None:
        """`judge_connection`: how to reach the checkpoint's feature judge, where it has one (judge.py)."""
        # numpy's BLAS threads spin after each call and starve torch's on a small machine: 56 → 14 ms per prompt.
        threadpool_limits(1, user_api="blas")
        self.checkpoint = checkpoint
        self.encoder = encoder
        self.featurizer = checkpoint.featurizer
        self.calibrated = tuple(calibrated)
        judge_model = self.featurizer.judge_model
        self.judge = FeatureJudge(judge_model, judge_connection) if judge_model else None
        self._cache_dir = cache_dir
        clash = set(checkpoint.models) & {c.name for c in self.calibrated}
        if clash:
            raise ValueError(f"calibrated profiles shadow trained models: {', '.join(sorted(clash))}")
        stale = [
            c.name for c in self.calibrated if not made_by_network(c.card.get("checkpoint_version"), checkpoint.version)
        ]
        if stale:
            files = ", ".join(f"{CALIBRATED_DIR}/{file_stem(name)}.json/.npz" for name in stale)
            raise ValueError(
                f"calibrated profiles {', '.join(stale)} were fitted on another network than checkpoint "
                f"{checkpoint.version}, so their scores would be meaningless: remove {files} and run "
                "`llmrank calibrate` for them again"
            )

    @classmethod
    def load(
        cls,
        directory: Path,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        threads: int | None = None,
        judge_connection: JudgeConnection = DEFAULT_CONNECTION,
    ) -> Router:
        """`threads`: the encoder's threads for one prompt (`Encoder`); None: every usable core. It changes speed
        only: the vectors and scores are the same to the bit."""
        checkpoint = load_checkpoint(directory)
        encoder = encoder_for(checkpoint.encoder, cache_dir, threads)
        return cls(checkpoint, encoder, load_calibrated(directory), judge_connection, cache_dir)

    @property
    def profiles(self) -> tuple[str, ...]:
        """Trained models first, then calibrated ones: the columns of `quality`."""
        return self.checkpoint.models + tuple(c.name for c in self.calibrated)

    @functools.cached_property
    def profile_names(self) -> dict[str, str]:
        """Every name a backend may give as its profile → the profile: each profile, and the trained models'
        names in other sources (RouterBench's `claude-v2` → `claude-2`)."""
        return profile_names(self.profiles, self.checkpoint.aliases)

    @functools.cached_property
    def version(self) -> str:
        """`<network>+<encoder variant>`: vectors cached under one version never serve another
        (`network_version` reads the first part back)."""
        return f"{self.checkpoint.version}+{self.encoder.variant}"

    def warm_up(self) -> None:
        """One prompt through every stage and the one-thread encoder, so that no request pays for first runs (the
        feature judge, a remote call, is not asked)."""
        judged = None if self.judge is None else unjudged()[None, :]
        self.quality(self.vectorize(["warm up: which answer is right?"], judged=judged))
        self.encoder.encode(["warm up: which answer is right?"], narrow=True)

    def vectorize(
        self, prompts: Sequence[str], narrow: bool = False, judged: np.ndarray | None = None
    ) -> list[PromptVector]:
        """`narrow`: encode on one thread, for prompts scored while others are (`Encoder.encode`). `judged`: the
        judge's rows for these prompts where the caller asked it already (the gateway does, off the scoring
        threads); otherwise a router with a judge asks it here."""
        if judged is None and self.judge is not None:
            judged = self.judge.judge_many(prompts, self._cache_dir)
        embeddings = self.encoder.encode([embedding_text(p) for p in prompts], narrow=narrow)
        features = self.featurizer.transform(prompts, embeddings, judged=judged)
        return [PromptVector(f, e) for f, e in zip(features, embeddings, strict=True)]

    @torch.inference_mode()
    def quality(self, vectors: Sequence[PromptVector], head: str = DEFAULT_HEAD) -> np.ndarray:
        """(n, m) predicted quality in [0, 1] from the given head; the default head also scores calibrated profiles
        (a linear read-out of the shared representation, clipped to [0, 1])."""
        net = self.checkpoint.heads[head].net
        hidden = net.hidden(*_tensors(vectors))  # (n, 256)
        trained = net.quality_from_hidden(hidden).numpy()  # (n, m_trained), in (0, 1)
        if head != DEFAULT_HEAD or not self.calibrated:
            return trained
        extra = np.clip(np.stack([c.score(hidden.numpy()) for c in self.calibrated], axis=1), 0.0, 1.0)
        return np.concatenate([trained, extra.astype(trained.dtype)], axis=1)

    def estimated_cost(self, prompts: Sequence[str]) -> np.ndarray:
        """(n, m) dollars per query from prompt length; a calibrated profile without costs gets the median."""
        n_chars = np.array([len(p) for p in prompts])
        trained = self.checkpoint.cost_model.predict(n_chars)
        extra = [
            c.cost_model.predict(n_chars)[:, 0] if c.cost_model is not None else np.median(trained, axis=1)
            for c in self.calibrated
        ]
        return np.column_stack([trained, *extra]) if extra else trained

    def attributions(self, vector: PromptVector, profile: int) -> list[Attribution]:
        """Why `profile` (an index into `profiles`) scored as it did for `vector`: integrated gradients over the
        named features and the embedding, through the network's output or a calibrated profile's read-out."""
        trained = len(self.checkpoint.models)
        readout = None
        if profile >= trained:
            calibrated = self.calibrated[profile - trained]
            readout = (torch.from_numpy(calibrated.weight).float(), calibrated.bias)
        net = self.checkpoint.heads[DEFAULT_HEAD].net
        features, embedding = torch.from_numpy(vector.features), torch.from_numpy(vector.embedding)
        return attributions(net, self.featurizer.infos, features, embedding, min(profile, trained - 1), readout)

    @torch.inference_mode()
    def hidden(self, vectors: Sequence[PromptVector]) -> np.ndarray:
        """(n, 256) the default network's shared representation, what calibrated profiles read."""
        return self.checkpoint.heads[DEFAULT_HEAD].net.hidden(*_tensors(vectors)).numpy()


def profile_names(profiles: Sequence[str], aliases: Mapping[str, str]) -> dict[str, str]:
    """Name → profile, where an alias never hides a profile of the same name."""
    return {alias: name for alias, name in aliases.items() if name in profiles} | {p: p for p in profiles}


def network_version(router_version: str) -> str:
    """The network part of a `Router.version`: what a fitted weight vector and a stored feature vector depend on;
    the encoder's runtime and window only nudge the vectors."""
    return router_version.split("+", 1)[0]


def made_by_network(version: object, network: str) -> bool:
    """Whether something stamped with `version` (a router or checkpoint version) came from this network; records
    from before versions were stamped (None or empty) are taken as this network's."""
    return not version or network_version(str(version)) == network


def _tensors(vectors: Sequence[PromptVector]) -> tuple[torch.Tensor, torch.Tensor]:
    features = torch.from_numpy(np.stack([v.features for v in vectors]))
    embeddings = torch.from_numpy(np.stack([v.embedding for v in vectors]))
    return features, embeddings
