"""Builds the MarketView a risk evaluation needs from a market data provider and the structure engine (cached)."""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from engine.risk.context import MarketView
from storage.types import utcnow
from tools.market.base import MarketData, MarketDataError
from tools.structure.analysis import analyze_frame
from tools.structure.mtf import StructureCache, closed_candles

log = logging.getLogger(__name__)
VOLUME_MEAN_BARS = 20


class MarketViewSource(Protocol):
    """Anything that can describe the market of a symbol for the risk rules."""

    async def view(self, symbol: str, timeframe: str) -> MarketView:
        """Price, ATR, volume ratio, funding and structure for `symbol` now."""
        ...


class StructureMarketViews:
    """MarketView from a MarketData provider; the structure report is cached per closed candle."""

    def __init__(self, market: MarketData, cache: StructureCache | None = None, bars: int = 500) -> None:
        self.market = market
        self.cache = cache or StructureCache()
        self.bars = bars

    async def view(self, symbol: str, timeframe: str) -> MarketView:
        """Price, ATR(14), last-bar volume ratio, funding (when offered) and the structure report."""
        ticker = await self.market.ticker(symbol)
        frame = closed_candles(await self.market.ohlcv(symbol, timeframe, self.bars + 1), timeframe)
        if len(frame) < 50:
            raise MarketDataError(f"not enough closed {timeframe} candles for {symbol} ({len(frame)})")
        last_closed = frame.index[-1]
        report = self.cache.fresh(symbol, timeframe) or self.cache.for_candle(symbol, timeframe, last_closed)
        if report is None:
            report = analyze_frame(frame, symbol=symbol, timeframe=timeframe)
            self.cache.put(symbol, timeframe, last_closed, report)
        volume = frame["volume"].to_numpy()
        mean = float(np.mean(volume[-VOLUME_MEAN_BARS - 1 : -1])) if len(volume) > VOLUME_MEAN_BARS else 0.0
        funding = None
        try:
            funding = (await self.market.funding(symbol)).rate
        except MarketDataError:
            log.debug("no funding for %s", symbol)
        return MarketView(
            price=ticker.last,
            close=float(frame["close"].iloc[-1]),
            atr=report.atr,
            volume_ratio=float(volume[-1] / mean) if mean > 0 else None,
            funding_rate=funding,
            structure=report,
            now=utcnow(),
            timeframe=timeframe,
        )
