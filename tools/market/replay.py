"""Replay provider: candles from files, served only up to a movable "now" so a backtest cannot peek."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TypeAlias

import numpy as np
import pandas as pd

from tools.market.base import (
    TIMEFRAME_SECONDS,
    BookImbalance,
    Cvd,
    Funding,
    LongShortRatio,
    MarketDataError,
    OpenInterest,
    Ticker,
)
from tools.market.features import OhlcvArrays, cvd_from_candles, resample, timeframe_seconds, window_seconds
from tools.market.files import CandleFile, FundingFile, FundingRates, discover, discover_funding, load, load_funding
from tools.market.provider_base import MarketDataBase
from tools.market.symbols import parse_symbol, resolve_symbol

SOURCE = "replay"
_DAY_MS = 86_400_000
Instant: TypeAlias = datetime | pd.Timestamp | int


def to_ms(when: Instant) -> int:
    """Milliseconds since the epoch for a datetime (naive = UTC), Timestamp or int milliseconds."""
    if isinstance(when, bool):
        raise TypeError("a time is not a bool")
    if isinstance(when, int | np.integer):
        return int(when)
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000)


def ms_to_datetime(ms: int) -> datetime:
    """UTC datetime of epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class ReplayMarketData(MarketDataBase):
    """MarketData over candle files in `data_dir`; `now=None` means "the end of the data"."""

    name = SOURCE
    simulated = False

    def __init__(self, data_dir: Path | str, now: Instant | None = None) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise MarketDataError(f"Replay data folder {self.data_dir} does not exist.")
        self._files: dict[tuple[str, str], CandleFile] = discover(self.data_dir)
        if not self._files:
            raise MarketDataError(f"No candle files (like BTC_USDT-1h.csv) in {self.data_dir}.")
        self._symbols: dict[str, str] = {}  # unified symbol -> base
        for (base, _tf), file in self._files.items():
            self._symbols.setdefault(file.parts.unified, base)
            self._symbols.setdefault(f"{file.parts.base}/{file.parts.quote}", base)
        self._series: dict[tuple[str, str], OhlcvArrays] = {}
        self._funding_files: dict[str, FundingFile] = discover_funding(self.data_dir)
        self._funding: dict[str, FundingRates] = {}
        self._now_ms: int | None = None if now is None else to_ms(now)

    # -- time -------------------------------------------------------------------------------

    @property
    def now_ms(self) -> int | None:
        """The replay clock in epoch ms, or None for "end of data"."""
        return self._now_ms

    def set_now(self, when: Instant | None) -> None:
        """Move the replay clock (None = end of data); candles closing after it are invisible."""
        self._now_ms = None if when is None else to_ms(when)

    def advance(self, seconds: float) -> None:
        """Move the replay clock forward; needs a clock that was set."""
        if self._now_ms is None:
            raise MarketDataError("Set the replay time with set_now() before advancing it.")
        self._now_ms += int(seconds * 1000)

    # -- discovery --------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        """Unified perp symbols with at least one file."""
        return sorted(s for s in self._symbols if ":" in s)

    def resolve(self, symbol: str) -> str:
        """Unified symbol for any spelling; UnknownSymbolError with close matches when absent."""
        found = resolve_symbol(symbol, self._symbols)
        return parse_symbol(found).unified

    def native_timeframes(self, symbol: str) -> list[str]:
        """Timeframes with a file for `symbol`, finest first."""
        base = self._base(symbol)
        return [tf for tf in TIMEFRAME_SECONDS if (base, tf) in self._files]

    def span(self, symbol: str, timeframe: str) -> tuple[datetime, datetime]:
        """(first open time, last close time) of the full series, ignoring `now`."""
        full = self._full(self._base(symbol), timeframe)
        if len(full) == 0:
            raise MarketDataError(f"No {timeframe} candles for {symbol}.")
        tf_ms = timeframe_seconds(timeframe) * 1000
        return ms_to_datetime(int(full.ts[0])), ms_to_datetime(int(full.ts[-1]) + tf_ms)

    # -- candles ----------------------------------------------------------------------------

    def candles(self, symbol: str, timeframe: str, limit: int = 500) -> OhlcvArrays:
        """The last `limit` candles visible at now as arrays (cheap: for bar-by-bar backtests).

        Candles closed by now come whole; the current period's candle, when lower-timeframe candles
        closed inside it, is appended as a partial candle built only from those closed candles.
        """
        if limit < 1:
            raise MarketDataError(f"Ask for at least one candle, not {limit}.")
        base = self._base(symbol)
        tf_ms = timeframe_seconds(timeframe) * 1000
        full = self._full(base, timeframe)
        now = self._effective_now(base)
        end = int(np.searchsorted(full.ts, now - tf_ms, side="right"))
        partial = self._partial(base, timeframe, now)
        count = max(0, limit - (1 if partial is not None else 0))
        closed = full.slice(max(0, end - count), end)
        if partial is None:
            return closed
        return OhlcvArrays.concat([closed, partial])

    def _partial(self, base: str, timeframe: str, now: int) -> OhlcvArrays | None:
        tf_ms = timeframe_seconds(timeframe) * 1000
        period_start = (now // tf_ms) * tf_ms
        if period_start == now:
            return None
        for lower in TIMEFRAME_SECONDS:
            lower_ms = TIMEFRAME_SECONDS[lower] * 1000
            if lower_ms >= tf_ms or tf_ms % lower_ms or (base, lower) not in self._files:
                continue
            series = self._full(base, lower)
            lo = int(np.searchsorted(series.ts, period_start, side="left"))
            hi = int(np.searchsorted(series.ts, now - lower_ms, side="right"))
            if hi > lo:
                return resample(series.slice(lo, hi), tf_ms)
        return None

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        """The last `limit` candles visible at now (the newest may be partial) as an OHLCV frame."""
        arrays = self.candles(symbol, timeframe, limit)
        tf_ms = timeframe_seconds(timeframe) * 1000
        now = self._effective_now(self._base(symbol))
        forming = bool(len(arrays) and arrays.ts[-1] + tf_ms > now)
        return self.label(arrays.to_frame(), self.resolve(symbol), forming=forming)

    # -- other market values ----------------------------------------------------------------

    async def ticker(self, symbol: str) -> Ticker:
        """Last close visible at now and the change over 24h; no bid/ask in candle files."""
        unified, base = self.resolve(symbol), self._base(symbol)
        now = self._effective_now(base)
        best: tuple[int, float, str] | None = None
        for tf in self.native_timeframes(unified):
            series, tf_ms = self._full(base, tf), TIMEFRAME_SECONDS[tf] * 1000
            i = int(np.searchsorted(series.ts, now - tf_ms, side="right")) - 1
            if i >= 0 and (best is None or series.ts[i] + tf_ms > best[0]):
                best = (int(series.ts[i]) + tf_ms, float(series.close[i]), tf)
        if best is None:
            raise MarketDataError(f"No {unified} candles before {ms_to_datetime(now):%Y-%m-%d %H:%M} UTC.")
        closed_at, last, tf = best
        series, tf_ms = self._full(base, tf), TIMEFRAME_SECONDS[tf] * 1000
        j = int(np.searchsorted(series.ts, closed_at - _DAY_MS - tf_ms, side="right")) - 1
        change = None
        if j >= 0 and series.ts[j] + tf_ms >= closed_at - _DAY_MS - tf_ms and series.close[j] > 0:
            change = 100.0 * (last / float(series.close[j]) - 1.0)
        return Ticker(**self.origin(unified, ms_to_datetime(closed_at)), last=last, change_24h_pct=change)

    def funding_rates(self, symbol: str) -> FundingRates | None:
        """Every funding event of `symbol`'s funding-rate file, ignoring now (None without one): what a backtest
        charges on the bars it simulates after t, never what a decision at t reads."""
        base = self._base(symbol)
        cached = self._funding.get(base)
        if cached is None:
            file = self._funding_files.get(base)
            if file is None:
                return None
            cached = self._funding[base] = load_funding(file)
        return cached

    async def funding(self, symbol: str) -> Funding:
        """The last funding rate settled at or before now, from the symbol's funding-rate file."""
        unified = self.resolve(symbol)
        rates = self.funding_rates(unified)
        if rates is None:
            raise MarketDataError(f"Replay data has no funding rates for {unified} (no funding-rate file).")
        now = self._effective_now(self._base(unified))
        i = rates.settled_by(now)
        if i is None:
            raise MarketDataError(f"No {unified} funding rate before {ms_to_datetime(now):%Y-%m-%d %H:%M} UTC.")
        interval = rates.interval_ms()
        at = int(rates.ts[i])
        return Funding(
            **self.origin(unified, ms_to_datetime(at)),
            rate=float(rates.rate[i]),
            next_time=None if interval is None else ms_to_datetime(at + ((now - at) // interval + 1) * interval),
            interval_hours=8.0 if interval is None else interval / 3_600_000,
        )

    async def open_interest(self, symbol: str, window_hours: float = 4.0) -> OpenInterest:
        """Not in candle files."""
        raise MarketDataError(f"Replay data has no open interest for {self.resolve(symbol)} (candle files only).")

    async def book_imbalance(self, symbol: str, depth: int = 20) -> BookImbalance:
        """Not in candle files."""
        raise MarketDataError(f"Replay data has no order book for {self.resolve(symbol)} (candle files only).")

    async def cvd(self, symbol: str, window: str = "1h") -> Cvd:
        """Candle approximation over the window (no trades in files), flagged approximate."""
        unified, base = self.resolve(symbol), self._base(symbol)
        span_ms = window_seconds(window) * 1000
        now = self._effective_now(base)
        frame = None
        # The finest timeframe with candles in the window gives the best split of buy and sell volume.
        for tf in self.native_timeframes(unified):
            tf_ms = TIMEFRAME_SECONDS[tf] * 1000
            arrays = self.candles(unified, tf, max(1, span_ms // tf_ms) + 1)
            inside = arrays.ts + tf_ms > now - span_ms
            if inside.any():
                frame = arrays.slice(int(np.argmax(inside)), len(arrays)).to_frame()
                break
        if frame is None:
            raise MarketDataError(
                f"No {unified} candles in the {window} before {ms_to_datetime(now):%Y-%m-%d %H:%M} UTC."
            )
        buy, sell = cvd_from_candles(frame)
        return Cvd.of(self.origin(unified, ms_to_datetime(now)), buy, sell, approximate=True, window=window)

    async def long_short_ratio(self, symbol: str) -> LongShortRatio | None:
        """Candle files carry no long/short ratio: None, never invented."""
        self.resolve(symbol)
        return None

    async def close(self) -> None:
        """Nothing to release."""

    # -- internals --------------------------------------------------------------------------

    def _now(self, symbol: str) -> datetime:
        return ms_to_datetime(self._effective_now(self._base(symbol)))

    def _base(self, symbol: str) -> str:
        return self._symbols[resolve_symbol(symbol, self._symbols)]

    def _effective_now(self, base: str) -> int:
        if self._now_ms is not None:
            return self._now_ms
        ends = [
            int(self._full(base, tf).ts[-1]) + TIMEFRAME_SECONDS[tf] * 1000
            for tf in TIMEFRAME_SECONDS
            if (base, tf) in self._files and len(self._full(base, tf))
        ]
        if not ends:
            raise MarketDataError("The candle files are empty.")
        return max(ends)

    def _full(self, base: str, timeframe: str) -> OhlcvArrays:
        """The whole series of a timeframe: loaded from its file, or resampled from a lower one."""
        key = (base, timeframe)
        cached = self._series.get(key)
        if cached is not None:
            return cached
        file = self._files.get(key)
        if file is not None:
            series = self._extend(base, timeframe, load(file))
        else:
            source = self._resample_source(base, timeframe)
            series = resample(self._full(base, source), timeframe_seconds(timeframe) * 1000)
        self._series[key] = series
        return series

    def _extend(self, base: str, timeframe: str, series: OhlcvArrays) -> OhlcvArrays:
        """Continue a file that ends early with whole periods resampled from a lower file that goes further."""
        tf_ms = timeframe_seconds(timeframe) * 1000
        if len(series) == 0:
            return series
        next_open = int(series.ts[-1]) + tf_ms
        for lower in reversed(TIMEFRAME_SECONDS):
            lower_ms = TIMEFRAME_SECONDS[lower] * 1000
            if lower_ms >= tf_ms or tf_ms % lower_ms or (base, lower) not in self._files:
                continue
            source = self._full(base, lower)
            data_end = int(source.ts[-1]) + lower_ms if len(source) else 0
            last_whole = (data_end // tf_ms) * tf_ms  # periods ending by data_end are complete
            lo = int(np.searchsorted(source.ts, next_open, side="left"))
            hi = int(np.searchsorted(source.ts, last_whole, side="left"))
            if hi > lo:
                return OhlcvArrays.concat([series, resample(source.slice(lo, hi), tf_ms)])
        return series

    def _resample_source(self, base: str, timeframe: str) -> str:
        target = timeframe_seconds(timeframe)
        # The coarsest lower file that divides the target reaches furthest back for the least work.
        for lower in reversed(TIMEFRAME_SECONDS):
            secs = TIMEFRAME_SECONDS[lower]
            if secs < target and target % secs == 0 and (base, lower) in self._files:
                return lower
        raise MarketDataError(f"No {timeframe} candles for {base} and no lower timeframe to build them from.")
