"""Fixtures for the structure tests: real candle frames and a small fake MarketData over them."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from tools.market.base import Ticker

TF_SECONDS = {"15m": 900, "1h": 3600, "4h": 14_400}


@cache
def read_candles(path: Path) -> pd.DataFrame:
    """A project-convention OHLCV frame (UTC open-time index named "time", float64 columns)."""
    raw = pd.read_csv(path)
    frame = raw[["open", "high", "low", "close", "volume"]].astype("float64")
    frame.index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], unit="ms", utc=True), name="time")
    return frame


@pytest.fixture
def candles(ohlcv_dir: Path):
    """Loader of a real frame: candles("BTC", "1h")."""

    def load(base: str, timeframe: str) -> pd.DataFrame:
        return read_candles(ohlcv_dir / f"{base}_USDT-{timeframe}.csv")

    return load


class FakeMarketData:
    """Serves the last candles up to a settable clock from in-memory frames; counts ohlcv calls."""

    name = "fake"
    simulated = False

    def __init__(self, frames: dict[tuple[str, str], pd.DataFrame], now: datetime) -> None:
        self.frames = frames
        self.now = now
        self.calls: list[tuple[str, str, int]] = []

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        """Candles opened before now (the last one may still be forming), newest last."""
        self.calls.append((symbol, timeframe, limit))
        df = self.frames[(symbol, timeframe)]
        return df[df.index <= pd.Timestamp(self.now)].iloc[-limit:]

    async def ticker(self, symbol: str) -> Ticker:
        """Last close as the ticker."""
        df = await self.ohlcv(symbol, "15m", 1)
        return Ticker(symbol=symbol, source=self.name, timestamp=self.now, last=float(df["close"].iloc[-1]))


@pytest.fixture
def fake_md(candles) -> FakeMarketData:
    """Fake provider for BTC at 15m/1h/4h with the clock at 2025-06-01 00:07 UTC."""
    frames = {("BTC", tf): candles("BTC", tf) for tf in TF_SECONDS}
    return FakeMarketData(frames, datetime(2025, 6, 1, 0, 7, tzinfo=UTC))
