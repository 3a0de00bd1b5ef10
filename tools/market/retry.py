"""Market data's retry settings (storage.retry does the retrying): ccxt's NetworkError family only."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import ccxt

from storage.retry import RetryPolicy, retry_async

T = TypeVar("T")
log = logging.getLogger(__name__)

# Public endpoints: four tries, a quarter second doubling to 5 s, four times longer after a rate limit.
MARKET_RETRY = RetryPolicy(attempts=4, base_delay_s=0.25, max_delay_s=5.0, jitter=0.2, rate_limit_factor=4.0)


def is_retryable(exc: BaseException) -> bool:
    """True for transient failures: timeouts, rate limits, exchange unavailable (NetworkError)."""
    return isinstance(exc, ccxt.NetworkError)


def is_rate_limit(exc: BaseException) -> bool:
    """True when the exchange asked us to slow down."""
    return isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str = "request") -> T:
    """Run `call`, retrying NetworkError-family failures with backoff; anything else raises at once."""

    def note(retry: int, exc: BaseException, delay: float) -> None:
        log.warning("%s failed (%s: %s); retry %d in %.2fs", what, type(exc).__name__, exc, retry + 1, delay)

    return await retry_async(call, policy, retry_on=is_retryable, rate_limited=is_rate_limit, on_retry=note)
