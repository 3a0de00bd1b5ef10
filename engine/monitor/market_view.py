"""Builds the MarketView a risk evaluation needs from a market data provider and the structure engine (cached)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from engine.risk.context import CONTEXT_BARS, MarketView, build_market_view, context_structure
from storage.types import utcnow
from tools.market.base import MarketData, MarketDataError
from tools.structure.analysis import frame_arrays
from tools.structure.mtf import StructureCache, closed_candles

log = logging.getLogger(__name__)


class MarketViewSource(Protocol):
    """Anything that can describe the market of a symbol for the risk rules."""

    async def view(self, symbol: str, timeframe: str) -> MarketView:
        """Price, ATR, volume ratio, funding and structure for `symbol` now."""
        ...


class StructureMarketViews:
    """MarketView from a MarketData provider; the structure report is cached per closed candle."""

    def __init__(
        self,
        market: MarketData,
        cache: StructureCache | None = None,
        bars: int = CONTEXT_BARS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.market = market
        self.cache = cache or StructureCache()
        self.bars = bars  # the backtest's window too (engine.risk.context.CONTEXT_BARS): one context for both
        self.clock = clock

    async def view(self, symbol: str, timeframe: str) -> MarketView:
        """Price, ATR(14), last-bar volume ratio, funding (when offered) and the structure report."""
        ticker = await self.market.ticker(symbol)
        frame = closed_candles(await self.market.ohlcv(symbol, timeframe, self.bars + 1), timeframe).iloc[-self.bars :]
        if len(frame) < 50:
            raise MarketDataError(f"not enough closed {timeframe} candles for {symbol} ({len(frame)})")
        last_closed = frame.index[-1]
        high, low, close, volume = frame_arrays(frame)
        report = self.cache.fresh(symbol, timeframe) or self.cache.for_candle(symbol, timeframe, last_closed)
        if report is None:
            ts_ms = frame.index.as_unit("ms").asi8
            report = context_structure(high, low, close, volume, ts_ms, symbol, timeframe)
            self.cache.put(symbol, timeframe, last_closed, report)
        funding = None
        try:
            funding = (await self.market.funding(symbol)).rate
        except MarketDataError:
            log.debug("no funding for %s", symbol)
        return build_market_view(
            price=ticker.last,
            close=close,
            volume=volume,
            report=report,
            now=self.clock(),
            timeframe=timeframe,
            funding_rate=funding,
        )
