"""The one retry policy and helper: exponential backoff with a cap and jitter, for transient failures only.

Every caller (exchange reads and rate-limited order placement, market data, the model endpoint, the bots' answers
waiting out a 429, the outbox's backoff) keeps its own settings as data (`RetryPolicy(...)` values next to the
caller) and its own idea of what is transient (`retry_on`) and of a wait the server asked for (`wait_of`: HTTP 429
`retry_after`); the arithmetic and the loop live here once. It sits in the lowest layer so tools, inference and
the bots can all use it (DESIGN §1).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
log = logging.getLogger(__name__)


def _never(_exc: BaseException) -> bool:
    return False


def _not_asked(_exc: BaseException) -> float | None:
    return None


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
    # The most seconds one call may spend waiting in all (None: no limit): a wait that would end later is not begun,
    # the failure is raised instead (an interactive answer that would arrive a minute late is not worth it).
    budget_s: float | None = None
    sleep: Sleep = field(default=asyncio.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

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
    wait_of: Callable[[BaseException], float | None] = _not_asked,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    what: str | None = None,
    sleep: Sleep | None = None,
) -> T:
    """Run `call`; a failure `retry_on` accepts is retried after a delay until the attempts or the budget run out
    (then it raises as it came), anything else raises at once.

    The delay is the one the server asked for (`wait_of`, e.g. a 429's retry_after) or else the policy's backoff.
    `on_retry(retry, exc, delay)` may log; without it, `what` names the call in a warning per retry.
    """
    deadline = None if policy.budget_s is None else policy.clock() + policy.budget_s
    retry = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            if not retry_on(exc) or retry + 1 >= policy.attempts:
                raise
            asked = wait_of(exc)
            delay = asked if asked is not None else policy.delay_s(retry, rate_limited(exc))
            if deadline is not None and policy.clock() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(retry, exc, delay)
            elif what is not None:
                log.warning("%s failed (%s: %s); retry %d in %.2fs", what, type(exc).__name__, exc, retry + 1, delay)
            await (sleep or policy.sleep)(delay)
            retry += 1
