"""Per-user inbound rate limit: burst, refill, one notice per refusal streak, isolation, bounded memory."""

from __future__ import annotations

import pytest

from bot.core.userlimit import LimitVerdict, UserRateLimiter, polite_message


class FakeClock:
    """Manually advanced monotonic clock."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _limiter(rate_per_minute: float = 6.0, burst: int = 3, **kwargs: int) -> tuple[UserRateLimiter, FakeClock]:
    clock = FakeClock()
    return UserRateLimiter(rate_per_minute=rate_per_minute, burst=burst, clock=clock, **kwargs), clock


def test_burst_then_refusal() -> None:
    limiter, _ = _limiter(burst=3)
    assert [limiter.check("u").allowed for _ in range(3)] == [True, True, True]
    refused = limiter.check("u")
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx(10.0)  # 6/min: one token every 10 s


def test_refill_timing() -> None:
    limiter, clock = _limiter(rate_per_minute=6.0, burst=2)
    limiter.check("u")
    limiter.check("u")
    clock.advance(4.0)
    verdict = limiter.check("u")
    assert not verdict.allowed and verdict.retry_after_s == pytest.approx(6.0)
    clock.advance(verdict.retry_after_s - 0.01)
    assert not limiter.check("u").allowed
    clock.advance(0.01)
    assert limiter.check("u").allowed  # exactly when announced
    assert not limiter.check("u").allowed
    clock.advance(3600.0)  # refills to the burst, not beyond
    assert [limiter.check("u").allowed for _ in range(3)] == [True, True, False]


def test_fractional_rate_retry_after_is_reliable() -> None:
    limiter, clock = _limiter(rate_per_minute=7.0, burst=1)
    for _ in range(50):
        assert limiter.check("u").allowed
        verdict = limiter.check("u")
        assert not verdict.allowed
        clock.advance(verdict.retry_after_s)


def test_notify_only_once_per_streak() -> None:
    limiter, clock = _limiter(rate_per_minute=6.0, burst=1)
    assert limiter.check("u").allowed
    streak = [limiter.check("u") for _ in range(5)]
    assert [v.notify for v in streak] == [True, False, False, False, False]
    assert all(not v.allowed for v in streak)
    clock.advance(10.0)
    assert limiter.check("u").allowed  # the streak ends with an allowed message
    again = [limiter.check("u") for _ in range(3)]
    assert [v.notify for v in again] == [True, False, False]


def test_users_are_isolated() -> None:
    limiter, _ = _limiter(burst=2)
    assert limiter.check("tg:1").allowed and limiter.check("tg:1").allowed
    assert not limiter.check("tg:1").allowed
    assert limiter.check("tg:2").allowed
    assert limiter.check("dc:1").allowed
    assert limiter.check("tg:2").notify is False


def test_polite_message() -> None:
    assert polite_message(LimitVerdict(allowed=False, retry_after_s=6.2, notify=True)) == (
        "You're sending messages quickly — please wait 7 s."
    )
    assert "wait 1 s" in polite_message(LimitVerdict(allowed=False, retry_after_s=0.01, notify=True))
    assert "wait 10 s" in polite_message(LimitVerdict(allowed=False, retry_after_s=10.0, notify=False))
    assert polite_message(LimitVerdict(allowed=True)) == ""


def test_idle_buckets_are_pruned_with_many_users() -> None:
    limiter, clock = _limiter(rate_per_minute=6.0, burst=3)  # full again 30 s after emptying
    for n in range(100_000):
        assert limiter.check(f"user{n}").allowed
        if n % 1000 == 999:
            clock.advance(1.0)  # 1000 new users per second
    assert len(limiter) <= 30_000  # only the last 30 s of users are kept
    clock.advance(30.0)
    assert limiter.check("late").allowed
    assert len(limiter) == 1


def test_pruning_does_not_forgive_a_recent_spammer() -> None:
    limiter, clock = _limiter(rate_per_minute=6.0, burst=2)
    for _ in range(3):
        limiter.check("spammer")
    clock.advance(15.0)  # 1.5 tokens refilled, not full: must be kept
    for n in range(100):
        limiter.check(f"other{n}")
    assert limiter.check("spammer").allowed
    assert not limiter.check("spammer").allowed


def test_max_users_caps_memory() -> None:
    limiter, _ = _limiter(max_users=1000)
    for n in range(5000):
        limiter.check(f"user{n}")
    assert len(limiter) == 1000


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        UserRateLimiter(rate_per_minute=0, burst=1)
    with pytest.raises(ValueError):
        UserRateLimiter(rate_per_minute=10, burst=0)


async def test_take_and_prune_are_the_in_memory_buckets() -> None:
    """What the access chain awaits on SQLite: the same buckets as `check`, and the prune job drops full ones."""
    limiter, clock = _limiter(rate_per_minute=6.0, burst=2)  # full again 20 s after emptying
    assert [(await limiter.take("u")).allowed for _ in range(3)] == [True, True, False]
    assert not limiter.check("u").allowed  # one bucket behind both
    clock.advance(15.0)
    limiter.check("v")
    clock.advance(10.0)
    assert await limiter.prune() == 1 and len(limiter) == 1  # u is full again, v is not
