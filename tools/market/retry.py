"""Market data's retry settings and what counts as transient on ccxt's public endpoints (storage.retry retries)."""

from __future__ import annotations

import ccxt

from storage.retry import RetryPolicy

# Public endpoints: four tries, a quarter second doubling to 5 s, four times longer after a rate limit.
MARKET_RETRY = RetryPolicy(attempts=4, base_delay_s=0.25, max_delay_s=5.0, jitter=0.2, rate_limit_factor=4.0)


def is_retryable(exc: BaseException) -> bool:
    """True for transient failures: timeouts, rate limits, exchange unavailable (NetworkError)."""
    return isinstance(exc, ccxt.NetworkError)


def is_rate_limit(exc: BaseException) -> bool:
    """True when the exchange asked us to slow down."""
    return isinstance(exc, ccxt.RateLimitExceeded | ccxt.DDoSProtection)
