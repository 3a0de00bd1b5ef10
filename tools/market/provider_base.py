"""What the three MarketData providers (ccxt live, replay, simulated) do alike, written once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

import pandas as pd

from tools.market.base import Origin, Volatility
from tools.market.features import volatility_of


class MarketDataBase(ABC):
    """Base of the providers: values and frames are labelled from the provider's own name and `simulated` flag
    (so a simulated value can never go out unmarked), and volatility is read from the provider's own candles."""

    name: str
    simulated: bool

    def origin(self, symbol: str, timestamp: datetime, source: str | None = None) -> Origin:
        """Where a value comes from: this provider, or `source` (the fallback exchange that answered)."""
        return Origin(symbol=symbol, source=source or self.name, simulated=self.simulated, timestamp=timestamp)

    def label(self, frame: pd.DataFrame, symbol: str, *, forming: bool, source: str | None = None) -> pd.DataFrame:
        """`frame` with its attrs naming symbol, source, simulated and whether its newest candle is still forming."""
        frame.attrs.update(symbol=symbol, source=source or self.name, simulated=self.simulated, forming=forming)
        return frame

    @abstractmethod
    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        """The last `limit` candles (the newest may be still forming) as a labelled OHLCV frame."""

    @abstractmethod
    def _now(self, symbol: str) -> datetime:
        """The provider's present for `symbol`: the clock live, the replay time, the simulated market's time."""

    async def volatility(self, symbol: str, timeframe: str = "1h", lookback: int = 500) -> Volatility:
        """ATR(14) percentile regime over the closed candles visible now."""
        frame = await self.ohlcv(symbol, timeframe, lookback + 15)
        return volatility_of(frame, timeframe, lookback, self._now(symbol))
