"""Backends that keep failing sit out for a while, so later requests skip them instead of waiting on them again."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from gateway.registry import Backend

log = structlog.get_logger(__name__)


class Cooldowns:
    """`failures` retriable errors in a row put a backend on ice for `period_s`; one success clears its count. A
    `period_s` of 0 turns cool-downs off."""

    def __init__(self, failures: int, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.period_s = period_s
        self._clock = clock
        self._streak: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def cooling(self, name: str) -> bool:
        return self._until.get(name, 0.0) > self._clock()

    def available(self, candidates: Sequence[Backend]) -> list[Backend]:
        """The candidates not cooling down, in order; all of them when every one is (better late than never)."""
        ready = [b for b in candidates if not self.cooling(b.name)]
        return ready or list(candidates)

    def state(self, name: str) -> dict[str, float | int]:
        """Its failures in a row and the seconds it still sits out (0: it takes requests)."""
        left = max(0.0, self._until.get(name, 0.0) - self._clock())
        return {"failures_in_a_row": self._streak.get(name, 0), "cooling_s": round(left, 1)}

    def failed(self, name: str) -> bool:
        """Record a failure; True when it starts a cool-down."""
        if self.period_s <= 0:
            return False
        self._streak[name] = self._streak.get(name, 0) + 1
        if self._streak[name] < self.failures:
            return False
        self._streak[name] = 0
        self._until[name] = self._clock() + self.period_s
        log.warning("backend_cooling_down", backend=name, seconds=self.period_s)
        return True

    def succeeded(self, name: str) -> None:
        self._streak.pop(name, None)
        self._until.pop(name, None)
