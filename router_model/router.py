"""Inference: prompt → (features, embedding) → per-profile predicted quality. The gateway's one dependency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from router_model.checkpoint import Checkpoint, load_checkpoint
from router_model.encoder import DEFAULT_CACHE_DIR, Encoder
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

    def __init__(self, checkpoint: Checkpoint, encoder: Encoder) -> None:
        # numpy's BLAS threads spin after each call and starve torch's on a small machine: 56 → 14 ms per prompt.
        threadpool_limits(1, user_api="blas")
        self.checkpoint = checkpoint
        self.encoder = encoder
        self.featurizer = checkpoint.featurizer

    @classmethod
    def load(cls, directory: Path, cache_dir: Path = DEFAULT_CACHE_DIR) -> Router:
        checkpoint = load_checkpoint(directory)
        return cls(checkpoint, Encoder(max_tokens=int(checkpoint.encoder["max_tokens"]), cache_dir=cache_dir))

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.checkpoint.models

    @property
    def version(self) -> str:
        return self.checkpoint.version

    def vectorize(self, prompts: Sequence[str]) -> list[PromptVector]:
        embeddings = self.encoder.encode([embedding_text(p) for p in prompts])
        features = self.featurizer.transform(prompts, embeddings)
        return [PromptVector(f, e) for f, e in zip(features, embeddings, strict=True)]

    @torch.inference_mode()
    def quality(self, vectors: Sequence[PromptVector], head: str = DEFAULT_HEAD) -> np.ndarray:
        """(n, m) network outputs for the given head, one column per profile."""
        features = torch.from_numpy(np.stack([v.features for v in vectors]))
        embeddings = torch.from_numpy(np.stack([v.embedding for v in vectors]))
        return self.checkpoint.heads[head].net(features, embeddings).numpy()
