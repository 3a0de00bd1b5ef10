"""Multi-timeframe analysis (15m/1h/4h) from a MarketData provider, cached per timeframe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from tools.market.base import TIMEFRAME_SECONDS, MarketData, MarketDataError
from tools.structure.analysis import analyze_frame
from tools.structure.config import DEFAULT_CONFIG, StructureConfig
from tools.structure.report import Direction, MultiTimeframeReport, StructureReport

DEFAULT_TIMEFRAMES: tuple[str, ...] = ("15m", "1h", "4h")
# SPEC: 15m 3 min, 1h 5 min, 4h 10 min.
CACHE_TTL: dict[str, float] = {"15m": 180.0, "1h": 300.0, "4h": 600.0, "1d": 1800.0}


@dataclass(slots=True)
class _Entry:
    last_closed: pd.Timestamp
    stored_at: float
    report: StructureReport


class StructureCache:
    """Reports per (symbol, timeframe): served without fetching within the TTL, and reused after
    it as long as the last closed candle is the same one (a forming candle never changes them)."""

    def __init__(self, ttl: Mapping[str, float] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = dict(CACHE_TTL if ttl is None else ttl)
        self.clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self.hits = 0
        self.misses = 0

    def fresh(self, symbol: str, timeframe: str) -> StructureReport | None:
        """The cached report when younger than the timeframe's TTL."""
        e = self._entries.get((symbol, timeframe))
        if e is not None and self.clock() - e.stored_at < self.ttl.get(timeframe, 0.0):
            self.hits += 1
            return e.report
        return None

    def for_candle(self, symbol: str, timeframe: str, last_closed: pd.Timestamp) -> StructureReport | None:
        """The cached report when it was built on the same last closed candle (TTL restarts)."""
        e = self._entries.get((symbol, timeframe))
        if e is not None and e.last_closed == last_closed:
            e.stored_at = self.clock()
            self.hits += 1
            return e.report
        return None

    def put(self, symbol: str, timeframe: str, last_closed: pd.Timestamp, report: StructureReport) -> None:
        """Store a freshly computed report."""
        self.misses += 1
        self._entries[(symbol, timeframe)] = _Entry(last_closed, self.clock(), report)


def closed_candles(df: pd.DataFrame, timeframe: str, now: datetime | None = None) -> pd.DataFrame:
    """Drop candles still forming: those with open time + timeframe > `now`.

    Without `now`, a provider's own verdict (`df.attrs["forming"]`, set by the replay and
    simulated providers, whose clocks are not the wall clock) is used, else the wall clock.
    """
    if now is None and "forming" in df.attrs:
        return df.iloc[:-1] if df.attrs["forming"] and len(df) else df
    span = pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    return df[df.index + span <= pd.Timestamp(now or datetime.now(UTC))]


def combine(symbol: str, reports: Mapping[str, StructureReport], missing: Sequence[str] = ()) -> MultiTimeframeReport:
    """Alignment vector (each timeframe's bias) and the direction when every timeframe agrees."""
    alignment = {tf: r.bias for tf, r in reports.items()}
    vals = list(alignment.values())
    score = sum(vals) / len(vals) if vals else 0.0
    direction: Direction | None = None
    if vals and not missing:
        direction = "long" if all(v == 1 for v in vals) else "short" if all(v == -1 for v in vals) else None
    return MultiTimeframeReport(
        symbol=symbol,
        reports=dict(reports),
        alignment=alignment,
        alignment_score=score,
        direction=direction,
        missing=list(missing),
    )


def analyze_frames(
    frames: Mapping[str, pd.DataFrame], symbol: str, config: StructureConfig = DEFAULT_CONFIG
) -> MultiTimeframeReport:
    """Pure multi-timeframe analysis of closed-candle frames keyed by timeframe."""
    return combine(symbol, {tf: analyze_frame(df, symbol, tf, config=config) for tf, df in frames.items()})


async def analyze_mtf(
    md: MarketData,
    symbol: str,
    timeframes: Sequence[str] = DEFAULT_TIMEFRAMES,
    limit: int = 1000,
    cache: StructureCache | None = None,
    now: datetime | None = None,
    config: StructureConfig = DEFAULT_CONFIG,
) -> MultiTimeframeReport:
    """Fetch and analyse each timeframe (closed candles only); a failed timeframe is listed as missing.

    `now` decides which candle is still forming; None trusts the provider (see `closed_candles`).
    """

    async def one(tf: str) -> StructureReport:
        if cache is not None and (hit := cache.fresh(symbol, tf)) is not None:
            return hit
        df = await md.ohlcv(symbol, tf, limit + 1)
        closed = closed_candles(df, tf, now).iloc[-limit:]
        if len(closed) == 0:
            raise MarketDataError(f"No closed {tf} candles for {symbol}.")
        last = closed.index[-1]
        if cache is not None and (hit := cache.for_candle(symbol, tf, last)) is not None:
            return hit
        report = analyze_frame(closed, symbol, tf, config=config)
        if cache is not None:
            cache.put(symbol, tf, last, report)
        return report

    results = await asyncio.gather(*(one(tf) for tf in timeframes), return_exceptions=True)
    reports: dict[str, StructureReport] = {}
    missing: list[str] = []
    errors: list[BaseException] = []
    for tf, res in zip(timeframes, results, strict=True):
        if isinstance(res, MarketDataError):
            missing.append(tf)
            errors.append(res)
        elif isinstance(res, BaseException):
            raise res
        else:
            reports[tf] = res
    if not reports:
        raise errors[0] if errors else MarketDataError(f"No timeframes analysed for {symbol}.")
    return combine(symbol, reports, missing)
