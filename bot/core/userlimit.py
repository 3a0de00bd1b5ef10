"""Per-user rate limit for inbound messages: a token bucket per user, one polite notice per refusal streak.

Each user key gets `burst` tokens that refill at `rate_per_minute`; a message takes one token. A refused message
tells how long until the next token; `notify` is set only on the first refusal of a streak (the streak ends
with the next allowed message), so the bot answers a flood with one notice instead of one per message.

Memory stays bounded: a bucket untouched for long enough to be full again is indistinguishable from a new one
and is dropped, and at most `max_users` buckets are kept (the least recently seen goes first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

_EPSILON = 1e-9  # float slack so a token due exactly now counts as there


@dataclass(frozen=True)
class LimitVerdict:
    """Outcome of one check: whether to handle the message, and whether to tell the user to slow down."""

    allowed: bool
    retry_after_s: float = 0.0  # seconds until the next message would be allowed (0 when allowed)
    notify: bool = False  # first refusal of a streak: reply once with polite_message


@dataclass
class _Bucket:
    tokens: float
    updated_at: float
    refusing: bool = False


class UserRateLimiter:
    """Token bucket per user key: `burst` messages at once, then `rate_per_minute` on average."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 100_000,
    ) -> None:
        if rate_per_minute <= 0 or not math.isfinite(rate_per_minute):
            raise ValueError("rate_per_minute must be a positive number")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if max_users < 1:
            raise ValueError("max_users must be at least 1")
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self.max_users = max_users
        self._clock = clock
        self._per_second = rate_per_minute / 60.0
        self._idle_s = burst / self._per_second  # an empty bucket is full again after this long
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently seen first

    def __len__(self) -> int:
        """Number of users currently tracked."""
        return len(self._buckets)

    def check(self, user_key: str) -> LimitVerdict:
        """Take a token for one inbound message of `user_key`, or refuse it."""
        now = self._clock()
        self._prune(now)
        bucket = self._buckets.get(user_key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated_at=now)
            self._buckets[user_key] = bucket
            if len(self._buckets) > self.max_users:
                self._buckets.popitem(last=False)
        else:
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self._per_second)
            bucket.updated_at = max(bucket.updated_at, now)
            self._buckets.move_to_end(user_key)
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            bucket.refusing = False
            return LimitVerdict(allowed=True)
        retry_after = (1.0 - bucket.tokens) / self._per_second
        notify = not bucket.refusing
        bucket.refusing = True
        return LimitVerdict(allowed=False, retry_after_s=retry_after, notify=notify)

    def _prune(self, now: float) -> None:
        """Drop buckets idle long enough to be full again (they behave exactly like new ones)."""
        buckets = self._buckets
        while buckets:
            key, oldest = next(iter(buckets.items()))
            if now - oldest.updated_at < self._idle_s:
                break
            del buckets[key]


def polite_message(verdict: LimitVerdict) -> str:
    """The one-time reply to a refused message ("" for an allowed one)."""
    if verdict.allowed:
        return ""
    wait = max(1, math.ceil(verdict.retry_after_s - _EPSILON))
    return f"You're sending messages quickly — please wait {wait} s."
