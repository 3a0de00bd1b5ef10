"""A market data stand-in with settable prices for the paper account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tools.market.base import Ticker


class FakeMarket:
    """Implements the `ticker` part of `MarketData`; prices are set by the test."""

    name = "fake"
    simulated = True

    def __init__(self, **prices: float) -> None:
        self.prices: dict[str, float] = {}
        for key, value in prices.items():
            self.set(key, value)

    def set(self, symbol: str, price: float) -> None:
        """Set the last price of `symbol` (BTC, or a unified symbol)."""
        full = symbol if "/" in symbol else f"{symbol}/USDT:USDT"
        self.prices[full] = price

    async def ticker(self, symbol: str) -> Ticker:
        """The current fake price."""
        now = datetime.now(UTC)
        return Ticker(symbol=symbol, source="fake", simulated=True, timestamp=now, last=self.prices[symbol])

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)
