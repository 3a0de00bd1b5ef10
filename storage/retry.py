"""The one retry policy and helper: exponential backoff with a cap and jitter, for transient failures only.

Every caller (exchange reads and rate-limited order placement, market data, the model endpoint) keeps its own
settings as data (`RetryPolicy(...)` values next to the caller) and its own idea of what is transient
(`retry_on`); the arithmetic and the loop live here once. It sits in the lowest layer so tools, inference and the
bots can all use it (DESIGN §1).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def _never(_exc: BaseException) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry; `sleep` is injectable so tests run instantly."""

    attempts: int = 3  # tries in all, the first included
    base_delay_s: float = 0.5
    max_delay_s: float = 4.0
    # A fraction of the delay added at random, so many workers do not retry in lockstep (0 = exact delays).
    jitter: float = 0.0
    # A "slow down" answer (rate limit) needs more patience than a dropped connection.
    rate_limit_factor: float = 1.0
    sleep: Sleep = field(default=asyncio.sleep, compare=False)

    def delay_s(self, retry: int, rate_limited: bool = False) -> float:
        """Seconds to wait before retry number `retry` (0-based): doubling from the base, capped, then jittered."""
        delay = self.base_delay_s * 2**retry * (self.rate_limit_factor if rate_limited else 1.0)
        return min(delay, self.max_delay_s) * (1 + self.jitter * random.random())


async def retry_async(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retry_on: Callable[[BaseException], bool],
    rate_limited: Callable[[BaseException], bool] = _never,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Sleep | None = None,
) -> T:
    """Run `call`; a failure `retry_on` accepts is retried after the policy's delay until the attempts run out
    (then it raises as it came), anything else raises at once. `on_retry(retry, exc, delay)` may log."""
    retry = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not retry_on(exc) or retry + 1 >= policy.attempts:
                raise
            delay = policy.delay_s(retry, rate_limited(exc))
            if on_retry is not None:
                on_retry(retry, exc, delay)
            await (sleep or policy.sleep)(delay)
            retry += 1
