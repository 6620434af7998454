"""The LLMRank ranking network (paper eq. 4–10): two branches, late fusion, one utility per model."""

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
    dropout: float = 0.1
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
    """s(x) = g([h_f(standardise(f(x))) ; h_e(e(x))]) — per-model utilities (B, m)."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, config: LLMRankConfig) -> None:
        super().__init__()
        if not (config.use_features or config.use_embedding):
            raise ValueError("the network needs at least one branch")
        self.config = config
        self.register_buffer("feature_mean", torch.zeros(config.n_features))
        self.register_buffer("feature_std", torch.ones(config.n_features))
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

    def set_feature_scaling(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-6))

    def hidden(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The shared representation the last layer reads: one weight vector per model turns it into a score."""
        parts = []
        if self.features_branch is not None:
            z = (features - self.feature_mean) / self.feature_std  # (B, F)
            parts.append(self.features_branch(z))  # (B, 256)
        if self.text_branch is not None:
            parts.append(self.text_branch(embedding))  # (B, 256)
        return self.fused[:-1](torch.cat(parts, dim=-1))  # (B, 256)

    def forward(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.fused[-1](self.hidden(features, embedding))  # (B, m)
