"""The market data contract every provider (ccxt live, replay, simulated) implements."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal, Protocol, TypedDict, runtime_checkable

import pandas as pd
from pydantic import BaseModel, Field

Timeframe = Literal["15m", "1h", "4h", "1d"]
TIMEFRAMES: tuple[str, ...] = ("15m", "1h", "4h", "1d")
TIMEFRAME_SECONDS: dict[str, int] = {"15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
VolRegime = Literal["LOW", "NORMAL", "HIGH", "EXTREME"]

# OHLCV frames: index = candle OPEN time, tz-aware UTC DatetimeIndex named "time", ascending,
# unique; float64 columns exactly these, in this order.
OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


class MarketDataError(Exception):
    """A market data request failed; `user_message` is safe to show in a chat."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class UnknownSymbolError(MarketDataError):
    """The symbol does not exist on the provider; carries close matches."""

    def __init__(self, symbol: str, suggestions: list[str], available: Iterable[str] = ()) -> None:
        # Without a close match, a short listing (the simulated market's universe) tells what does exist.
        listed = list(available)
        if suggestions:
            hint = f"; did you mean {', '.join(suggestions)}?"
        elif listed:
            hint = f"; available: {', '.join(listed)}."
        else:
            hint = "."
        super().__init__(f"Unknown symbol {symbol!r}{hint}")
        self.symbol = symbol
        self.suggestions = suggestions


class Origin(TypedDict):
    """The fields every market value carries, built once per value by its provider: `Ticker(**origin, last=...)`."""

    symbol: str
    source: str
    simulated: bool
    timestamp: datetime


class Sourced(BaseModel):
    """Base of every market value: where it came from and whether it is simulated."""

    symbol: str = Field(description="Unified symbol, e.g. BTC/USDT:USDT")
    source: str = Field(description="Provider id, e.g. 'binanceusdm', 'replay', 'simulated'")
    simulated: bool = False
    timestamp: datetime


class Ticker(Sourced):
    """Last price and 24h change."""

    last: float
    change_24h_pct: float | None = None
    bid: float | None = None
    ask: float | None = None


class Funding(Sourced):
    """Current funding rate (fraction per interval, 0.0001 = 0.01%) and the next funding time."""

    rate: float
    next_time: datetime | None = None
    interval_hours: float = 8.0


class OpenInterest(Sourced):
    """Open interest now and its change over a window."""

    value: float = Field(description="Open interest in contracts/base units")
    value_usd: float | None = None
    change_pct: float | None = Field(default=None, description="Change over `window_hours` in %")
    window_hours: float = 4.0


class BookImbalance(Sourced):
    """Order book imbalance over the top levels: (bid vol - ask vol) / (bid vol + ask vol), -1..1."""

    imbalance: float
    bid_volume: float
    ask_volume: float
    depth: int


class Cvd(Sourced):
    """Cumulative volume delta over a window; `approximate` when derived from candles, not trades."""

    cvd: float
    buy_volume: float
    sell_volume: float
    approximate: bool
    window: str

    @classmethod
    def of(cls, origin: Origin, buy: float, sell: float, *, approximate: bool, window: str) -> Cvd:
        """The CVD of a window's buy and sell volume: buy - sell."""
        return cls(**origin, cvd=buy - sell, buy_volume=buy, sell_volume=sell, approximate=approximate, window=window)


class LongShortRatio(Sourced):
    """Accounts long / accounts short, as published by the exchange."""

    ratio: float


class Volatility(Sourced):
    """ATR(14) and its percentile over a lookback, bucketed into a regime."""

    timeframe: str
    atr: float
    atr_pct_of_price: float
    percentile: float = Field(ge=0, le=100)
    regime: VolRegime


@runtime_checkable
class MarketData(Protocol):
    """Async market data provider. Symbols may be given in any common spelling (btc, BTCUSDT, ...)."""

    name: str
    simulated: bool

    async def ticker(self, symbol: str) -> Ticker:
        """Last price, 24h change, bid/ask."""
        ...

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        """The last `limit` candles (the newest may be still forming) as an OHLCV frame."""
        ...

    async def funding(self, symbol: str) -> Funding:
        """Current funding rate and next funding time."""
        ...

    async def open_interest(self, symbol: str, window_hours: float = 4.0) -> OpenInterest:
        """Open interest and its change over the window."""
        ...

    async def book_imbalance(self, symbol: str, depth: int = 20) -> BookImbalance:
        """Order book imbalance over the top `depth` levels."""
        ...

    async def cvd(self, symbol: str, window: str = "1h") -> Cvd:
        """Cumulative volume delta from trades, or a candle approximation flagged as approximate."""
        ...

    async def long_short_ratio(self, symbol: str) -> LongShortRatio | None:
        """Long/short ratio where the exchange publishes one, else None (never invented)."""
        ...

    async def volatility(self, symbol: str, timeframe: str = "1h", lookback: int = 500) -> Volatility:
        """ATR(14) percentile regime: LOW / NORMAL / HIGH / EXTREME."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
