"""Send-rate limiter: per-chat spacing holds, and the per-chat map forgets chats that no longer constrain anything."""

from __future__ import annotations

from bot.core.ratelimit import TELEGRAM, PlatformLimits, RateLimiter


def test_per_chat_map_stays_bounded_with_many_chats() -> None:
    limiter = RateLimiter(TELEGRAM)  # widest spacing 3 s (groups)
    now = 0.0
    for n in range(100_000):
        now = n * 0.01  # 100 new chats per second, for 1,000 s
        limiter.record(f"chat{n}", now)
    # Only chats of the last two spacing intervals can still be there (one sweep per interval).
    assert limiter.tracked_chats() <= 2 * 3.0 / 0.01 + 1


def test_pruning_keeps_every_constraint_that_still_applies() -> None:
    limits = PlatformLimits(per_second=1e9, chat_interval_s=1.0, group_interval_s=3.0)
    limiter = RateLimiter(limits)
    limiter.record("group", 10.0)
    limiter.record("private", 12.5)
    for n in range(1000):
        limiter.record(f"other{n}", 12.6 + n * 0.0001)  # triggers sweeps
    assert limiter.ready_at("group", True, 12.7) == 13.0  # 3 s after its last message
    assert limiter.ready_at("private", False, 12.7) == 13.5
    limiter.record("late", 20.0)  # a sweep long after: everything earlier is free and forgotten
    assert limiter.ready_at("group", True, 20.0) == 20.0
    assert limiter.tracked_chats() == 1
