"""The cool-down bookkeeping on its own, with a clock the test moves."""

from __future__ import annotations

from gateway.cooldown import Cooldowns
from gateway.registry import Backend

A, B = (Backend(name=n, litellm_model=f"openai/{n}", profile="p") for n in ("a", "b"))


def test_streak_starts_a_cooldown_and_success_clears_it():
    now = [0.0]
    cooldowns = Cooldowns(failures=2, period_s=10, clock=lambda: now[0])
    assert cooldowns.failed("a") is False
    cooldowns.succeeded("a")
    assert cooldowns.failed("a") is False  # the streak restarted
    assert cooldowns.failed("a") is True
    assert cooldowns.available([A, B]) == [B]
    now[0] = 10.5
    assert cooldowns.available([A, B]) == [A, B]


def test_when_every_candidate_is_cooling_all_are_still_tried():
    cooldowns = Cooldowns(failures=1, period_s=60)
    cooldowns.failed("a")
    cooldowns.failed("b")
    assert cooldowns.available([A, B]) == [A, B]


def test_a_period_of_zero_turns_cool_downs_off():
    cooldowns = Cooldowns(failures=1, period_s=0)
    assert [cooldowns.failed("a") for _ in range(3)] == [False, False, False]
    assert not cooldowns.cooling("a") and cooldowns.available([A, B]) == [A, B]
