"""Per-user rate limit for inbound messages: a token bucket per user, one polite notice per refusal streak.

Each user key gets `burst` tokens that refill at `rate_per_minute`; a message takes one token. A refused message
tells how long until the next token; `notify` is set only on the first refusal of a streak (the streak ends
with the next allowed message), so the bot answers a flood with one notice instead of one per message.

Memory stays bounded: a bucket untouched for long enough to be full again is indistinguishable from a new one
and is dropped, and at most `max_users` buckets are kept (the least recently seen goes first).

On PostgreSQL the buckets live in the database (`SharedUserRateLimiter`), so a user's budget holds across all
workers; on SQLite (one process) they stay in memory.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from storage.repositories.rate_buckets import BucketState, BucketStore

log = logging.getLogger(__name__)

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

    async def take(self, user_key: str) -> LimitVerdict:
        """`check`, awaitable: the access chain's call, the same for buckets kept in a database."""
        return self.check(user_key)

    async def prune(self) -> int:
        """Drop the buckets that are full again; how many went."""
        before = len(self._buckets)
        self._prune(self._clock())
        return before - len(self._buckets)

    async def close(self) -> None:
        """Nothing to release for buckets in memory."""

    def _prune(self, now: float) -> None:
        """Drop buckets idle long enough to be full again (they behave exactly like new ones)."""
        buckets = self._buckets
        while buckets:
            key, oldest = next(iter(buckets.items()))
            if now - oldest.updated_at < self._idle_s:
                break
            del buckets[key]


class SharedUserRateLimiter(UserRateLimiter):
    """The same token buckets kept in the database, so every worker draws from one budget per user.

    If the database does not answer a check, the message is judged by this worker's own in-memory buckets (the
    inherited `check`) and the database is left alone for `retry_s`: the limit protects CPU, not money (orders have
    their own guards), so an outage must neither lock every user out nor stall each message on a dead server;
    per-worker limits are what a deployment had before, and one log line a streak says so.
    """

    def __init__(
        self,
        store: BucketStore,
        rate_per_minute: float,
        burst: int,
        *,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = 100_000,
    ) -> None:
        super().__init__(rate_per_minute, burst, clock=clock, max_users=max_users)
        self.store = store
        self.retry_s = retry_s
        self._db_down_until: float | None = None  # set while checks go to the in-memory buckets

    async def take(self, user_key: str) -> LimitVerdict:
        """Take a token from the user's bucket in the database; this worker's own bucket when it does not answer."""
        if self._db_down_until is not None and self._clock() < self._db_down_until:
            return self.check(user_key)
        try:
            state = await self.store.take(user_key, burst=self.burst, per_second=self._per_second)
        except Exception as exc:  # any failure of the check must cost the message nothing but the fallback
            if self._db_down_until is None:
                log.warning("user rate limit: database check failed (%r); limiting per worker for now", exc)
            self._db_down_until = self._clock() + self.retry_s
            return self.check(user_key)
        if self._db_down_until is not None:
            log.info("user rate limit: database checks answer again; limits hold across workers")
            self._db_down_until = None
        return self.verdict(state)

    def verdict(self, state: BucketState) -> LimitVerdict:
        """What a bucket's state after a check means: allowed, or refused with the wait and whether to say so."""
        if state.refusals == 0:
            return LimitVerdict(allowed=True)
        retry_after = max(0.0, 1.0 - state.tokens) / self._per_second
        return LimitVerdict(allowed=False, retry_after_s=retry_after, notify=state.refusals == 1)

    async def prune(self) -> int:
        """Delete the stored buckets that are full again (and this worker's own); how many stored ones went."""
        await super().prune()
        return await self.store.prune(idle_s=self._idle_s)

    async def close(self) -> None:
        """Close the database connection."""
        await self.store.close()


def user_limiter(database_url: str, *, rate_per_minute: float, burst: int) -> UserRateLimiter:
    """The limiter for a deployment: buckets in the database on PostgreSQL (many workers), in memory on SQLite."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return SharedUserRateLimiter(BucketStore(database_url), rate_per_minute, burst)
    return UserRateLimiter(rate_per_minute, burst)


def polite_message(verdict: LimitVerdict) -> str:
    """The one-time reply to a refused message ("" for an allowed one)."""
    if verdict.allowed:
        return ""
    wait = max(1, math.ceil(verdict.retry_after_s - _EPSILON))
    return f"You're sending messages quickly — please wait {wait} s."
