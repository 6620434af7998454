"""Per-model dollar cost of a query predicted from the prompt alone (used where no price list applies)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CostModel:
    """cost_j ≈ a_j + b_j · characters, least squares on the training rows that have model j's cost, never below
    zero; a model with no such rows gets the median model's line."""

    intercept: np.ndarray  # (m,)
    per_char: np.ndarray  # (m,)

    @classmethod
    def fit(cls, n_chars: np.ndarray, cost: np.ndarray) -> CostModel:
        x = np.stack([np.ones_like(n_chars, dtype=np.float64), n_chars.astype(np.float64)], axis=1)
        coef = np.full((2, cost.shape[1]), np.nan)
        for j in range(cost.shape[1]):
            known = ~np.isnan(cost[:, j])
            if known.sum() >= 2:
                coef[:, j], *_ = np.linalg.lstsq(x[known], cost[known, j], rcond=None)
        if np.isnan(coef).all():
            coef[:] = 0.0
        fallback = np.nanmedian(coef, axis=1, keepdims=True)
        coef = np.where(np.isnan(coef), fallback, coef)
        return cls(intercept=coef[0], per_char=coef[1])

    def predict(self, n_chars: np.ndarray) -> np.ndarray:
        """(n, m) dollars."""
        cost = self.intercept[None, :] + n_chars.astype(np.float64)[:, None] * self.per_char[None, :]
        return np.maximum(cost, 0.0)
