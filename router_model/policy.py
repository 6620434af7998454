"""The routing policy: pick the model with the highest utility q̂ − λ·ĉ. Pure functions, no I/O."""

from __future__ import annotations

import numpy as np


def utilities(quality: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """(…, m) utility of each model; cost in dollars per query."""
    return quality - lam * cost


def choose(quality: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """Index of the best model per row; among equal utilities the cheaper model wins."""
    u = utilities(quality, cost, lam)
    best = u.max(axis=-1, keepdims=True)
    tied_cost = np.where(np.isclose(u, best, rtol=0.0, atol=1e-12), cost, np.inf)
    return tied_cost.argmin(axis=-1)


def choose_among(quality: np.ndarray, cost: np.ndarray, lam: float, allowed: np.ndarray) -> np.ndarray:
    """`choose` restricted per row to the models `allowed` (n, m) marks; each row must allow at least one."""
    u = np.where(allowed, utilities(quality, cost, lam), -np.inf)
    best = u.max(axis=-1, keepdims=True)
    tied_cost = np.where(allowed & np.isclose(u, best, rtol=0.0, atol=1e-12), cost, np.inf)
    return tied_cost.argmin(axis=-1)


def ranking(quality: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """Model indices for one prompt, best first (the order fallbacks follow)."""
    u = utilities(quality, cost, lam)
    return np.lexsort((cost, -u))
