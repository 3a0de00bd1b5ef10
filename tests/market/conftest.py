"""Fixtures of the market data tests."""

from __future__ import annotations

import dataclasses

import pytest

from storage.retry import RetryPolicy
from tools.market.retry import MARKET_RETRY


class SleepLog:
    """An instant stand-in for asyncio.sleep that records the requested delays."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> SleepLog:
    """Recorded backoff delays."""
    return SleepLog()


@pytest.fixture
def fast_retry(sleeps: SleepLog) -> RetryPolicy:
    """The default retry policy with instant, recorded sleeps."""
    return dataclasses.replace(MARKET_RETRY, sleep=sleeps)
