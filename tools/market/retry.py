"""Retries with exponential backoff for transient exchange failures only (ccxt's NetworkError family)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import ccxt

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry; `sleep` is injectable so tests run instantly."""

    attempts: int = 4
    base_delay_s: float = 0.25
    max_delay_s: float = 5.0
    # Rate limits need more patience than a dropped connection.
    rate_limit_factor: float = 4.0
    jitter: float = 0.2
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Backoff before retry number `attempt` (1-based) after `exc`."""
        base = self.base_delay_s * (2 ** (attempt - 1))
        if isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
            base *= self.rate_limit_factor
        base = min(base, self.max_delay_s)
        return base * (1 + random.uniform(-self.jitter, self.jitter))


def is_retryable(exc: BaseException) -> bool:
    """True for transient failures: timeouts, rate limits, exchange unavailable (NetworkError)."""
    return isinstance(exc, ccxt.NetworkError)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str = "request") -> T:
    """Run `call`, retrying NetworkError-family failures with backoff; anything else raises at once."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except Exception as exc:
            if not is_retryable(exc) or attempt >= policy.attempts:
                raise
            delay = policy.delay(attempt, exc)
            log.warning("%s failed (%s: %s); retry %d in %.2fs", what, type(exc).__name__, exc, attempt, delay)
            await policy.sleep(delay)
