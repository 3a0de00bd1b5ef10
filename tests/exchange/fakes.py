"""A market data stand-in with settable prices for the paper account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tools.market.base import Ticker


class FakeMarket:
    """Implements the `ticker` part of `MarketData`; prices (and optionally the market time) are set by the test.

    It stands in for the simulated market, under its name: a paper account opened on the simulated market is read
    through it without being taken for another market's account.
    """

    name = "simulated"
    simulated = True

    def __init__(self, **prices: float) -> None:
        self.at: datetime | None = None  # None: the wall clock
        self.prices: dict[str, float] = {}
        for key, value in prices.items():
            self.set(key, value)

    def set(self, symbol: str, price: float) -> None:
        """Set the last price of `symbol` (BTC, or a unified symbol)."""
        full = symbol if "/" in symbol else f"{symbol}/USDT:USDT"
        self.prices[full] = price

    async def ticker(self, symbol: str) -> Ticker:
        """The current fake price."""
        now = self.at or datetime.now(UTC)
        return Ticker(symbol=symbol, source="fake", simulated=True, timestamp=now, last=self.prices[symbol])

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)
