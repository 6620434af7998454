"""The LLMRank ranking network (paper eq. 4–10): two branches, late fusion, one predicted quality per model.

Two guards keep it sane on prompts unlike its training data: each feature is clipped to the range it took in
training before it is standardised, and the last layer's logits go through a sigmoid, so every predicted quality
lies in (0, 1) whatever the input (all of the corpus's qualities lie in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LLMRankConfig:
    n_features: int
    n_models: int
    embedding_dim: int = 384
    hidden: int = 512
    branch_out: int = 256
    dropout: float = 0.3  # chosen on the validation AIQ over 0.1 and 0.5 (docs/ROUTER_MODEL.md)
    use_features: bool = True
    use_embedding: bool = True


class Branch(nn.Module):
    """Linear → ReLU → Dropout → Linear (eq. 5 for features, eq. 6 for the text embedding)."""

    def __init__(self, d_in: int, hidden: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LLMRankNet(nn.Module):
    """q̂(x) = σ(g([h_f(standardise(clip(f(x)))) ; h_e(e(x))])) — per-model predicted quality (B, m)."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    feature_low: torch.Tensor
    feature_high: torch.Tensor

    def __init__(self, config: LLMRankConfig) -> None:
        super().__init__()
        if not (config.use_features or config.use_embedding):
            raise ValueError("the network needs at least one branch")
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.n_features))
        self.register_buffer("feature_std", torch.ones(config.n_features))
        self.register_buffer("feature_low", torch.full((config.n_features,), -torch.inf))
        self.register_buffer("feature_high", torch.full((config.n_features,), torch.inf))
        self.features_branch: Branch | None = (
            Branch(config.n_features, config.hidden, config.branch_out, config.dropout) if config.use_features else None
        )
        self.text_branch: Branch | None = (
            Branch(config.embedding_dim, config.hidden, config.branch_out, config.dropout)
            if config.use_embedding
            else None
        )
        fused_in = config.branch_out * (int(config.use_features) + int(config.use_embedding))
        self.fused = nn.Sequential(
            nn.Linear(fused_in, config.branch_out),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.branch_out, config.n_models),
        )

    def set_feature_scaling(self, features: torch.Tensor) -> None:
        """Clip range, mean and spread of each feature, from the training rows (n, F)."""
        self.feature_low.copy_(features.min(dim=0).values)
        self.feature_high.copy_(features.max(dim=0).values)
        self.feature_mean.copy_(features.mean(dim=0))
        self.feature_std.copy_(features.std(dim=0).clamp_min(1e-6))

    def hidden(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The shared representation the last layer reads: one weight vector per model turns it into a score."""
        parts = []
        if self.features_branch is not None:
            clipped = torch.minimum(torch.maximum(features, self.feature_low), self.feature_high)
            z = (clipped - self.feature_mean) / self.feature_std  # (B, F)
            parts.append(self.features_branch(z))  # (B, 256)
        if self.text_branch is not None:
            parts.append(self.text_branch(embedding))  # (B, 256)
        return self.fused[:-1](torch.cat(parts, dim=-1))  # (B, 256)

    def quality_from_hidden(self, hidden: torch.Tensor) -> torch.Tensor:
        """The last layer: one weight vector per model, then σ (B, m) in (0, 1)."""
        return torch.sigmoid(self.fused[-1](hidden))

    def forward(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.quality_from_hidden(self.hidden(features, embedding))
