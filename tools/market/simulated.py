"""Simulated market: the offline default. Seeded, realistic, advancing with the clock, always labelled."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pandas as pd

from tools.market.base import BookImbalance, Cvd, Funding, LongShortRatio, MarketDataError, OpenInterest, Ticker
from tools.market.features import OhlcvArrays, resample, timeframe_seconds, window_seconds
from tools.market.provider_base import MarketDataBase
from tools.market.replay import Instant, ms_to_datetime, to_ms
from tools.market.simgen import BAR_MS, ORIGIN_MS, UNIVERSE, SymbolPath, symbol_key
from tools.market.symbols import resolve_symbol

SOURCE = "simulated"
_FUNDING_MS = 8 * 3_600_000
_DAY_MS = 86_400_000
_SPREAD = 0.5e-4  # half the bid/ask spread, as a fraction of price
# The simulated exchange lists one linear USDT perpetual per asset of the universe.
SYMBOLS: frozenset[str] = frozenset(f"{base}/USDT:USDT" for base in UNIVERSE)
_RESOLVED_MAX = 1024  # spellings remembered; user input is unbounded, so the memo is too unless capped


class SimulatedMarketData(MarketDataBase):
    """MarketData from a seeded generator; every value has simulated=True and source "simulated".

    Time comes from `clock` (epoch seconds, default wall clock) so the market advances live;
    pass `now` to freeze it (tests, demos). The same seed always gives the same candles.
    """

    name = SOURCE
    simulated = True

    def __init__(
        self,
        seed: int = 0,
        *,
        now: Instant | None = None,
        clock: Callable[[], float] = time.time,
        origin_ms: int = ORIGIN_MS,
    ) -> None:
        self.seed = seed
        self._clock = clock
        self._frozen_ms: int | None = None if now is None else to_ms(now)
        self._origin_ms = origin_ms
        self._paths: dict[str, SymbolPath] = {}
        # Open interest per closed bar only changes when a bar closes: the last series per symbol is kept.
        self._oi: dict[str, tuple[int, np.ndarray]] = {}
        self._resolved: dict[str, str] = {}

    # -- time -------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The simulated market's current time in epoch ms."""
        return self._frozen_ms if self._frozen_ms is not None else int(self._clock() * 1000)

    def set_now(self, when: Instant | None) -> None:
        """Freeze the market at `when`, or follow the clock again with None."""
        self._frozen_ms = None if when is None else to_ms(when)

    # -- candles ----------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        """The unified perp symbols the simulated market lists."""
        return sorted(SYMBOLS)

    def resolve(self, symbol: str) -> str:
        """Unified symbol of a listed asset in any spelling; UnknownSymbolError with close matches otherwise."""
        found = self._resolved.get(symbol)
        if found is None:
            found = resolve_symbol(symbol, SYMBOLS, available=UNIVERSE)
            if len(self._resolved) >= _RESOLVED_MAX:
                self._resolved.clear()
            self._resolved[symbol] = found
        return found

    def candles(self, symbol: str, timeframe: str, limit: int = 500) -> OhlcvArrays:
        """The last `limit` candles at now; the newest is the forming one, built from elapsed minutes."""
        if limit < 1:
            raise MarketDataError(f"Ask for at least one candle, not {limit}.")
        path, now = self._path(symbol), self.now_ms()
        tf_ms = timeframe_seconds(timeframe) * 1000
        index, elapsed = self._bar_at(path, now)
        # The newest candle is the one holding the last millisecond before now: at an exact boundary, the one
        # that just closed (not an empty one opening at now).
        first_ts = max(self._origin_ms, ((now - 1) // tf_ms) * tf_ms - (limit - 1) * tf_ms)
        start = (first_ts - self._origin_ms) // BAR_MS
        closed = path.bars(start, index)
        forming, _ = path.forming(index, elapsed)
        bars = OhlcvArrays.concat([closed, forming]) if elapsed > 0 else closed
        out = bars if tf_ms == BAR_MS else resample(bars, tf_ms)
        return out.slice(max(0, len(out) - limit), len(out))

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        """The last `limit` candles as an OHLCV frame (attrs mark it simulated)."""
        tf_ms = timeframe_seconds(timeframe) * 1000
        arrays = self.candles(symbol, timeframe, limit)
        forming = bool(len(arrays) and arrays.ts[-1] + tf_ms > self.now_ms())
        return self.label(arrays.to_frame(), self.resolve(symbol), forming=forming)

    # -- other values -----------------------------------------------------------------------

    async def ticker(self, symbol: str) -> Ticker:
        """Last price at now, 24h change, and a tight simulated spread."""
        unified, path, now = self.resolve(symbol), self._path(symbol), self.now_ms()
        last = self._price_at(path, now)
        change = None
        if now - _DAY_MS >= self._origin_ms:
            change = 100.0 * (last / self._price_at(path, now - _DAY_MS) - 1.0)
        return Ticker(
            **self.origin(unified, ms_to_datetime(now)),
            last=last,
            change_24h_pct=change,
            bid=last * (1 - _SPREAD),
            ask=last * (1 + _SPREAD),
        )

    async def funding(self, symbol: str) -> Funding:
        """Funding leans with the last day's move (longs pay in rallies), plus seeded noise."""
        unified, path, now = self.resolve(symbol), self._path(symbol), self.now_ms()
        ret_day = self._day_return(path, now)
        period = now // _FUNDING_MS
        noise = np.random.default_rng([self.seed, path.key, period, 2]).normal(0.0, 0.00004)
        rate = float(np.clip(0.0001 + 0.0004 * math.tanh(ret_day / 0.04) + noise, -0.003, 0.003))
        return Funding(
            **self.origin(unified, ms_to_datetime(now)),
            rate=rate,
            next_time=ms_to_datetime((period + 1) * _FUNDING_MS),
            interval_hours=8.0,
        )

    async def open_interest(self, symbol: str, window_hours: float = 4.0) -> OpenInterest:
        """Open interest that builds in trends and unwinds in sharp moves, and its change over the window."""
        unified, path, now = self.resolve(symbol), self._path(symbol), self.now_ms()
        index, _ = self._bar_at(path, now)
        series = self._oi_series(path, index)
        back = max(1, int(window_hours * 3_600_000 // BAR_MS))
        value = float(series[-1])
        change = None if len(series) <= back else 100.0 * (value / float(series[-1 - back]) - 1.0)
        price = self._price_at(path, now)
        return OpenInterest(
            **self.origin(unified, ms_to_datetime(now)),
            value=value,
            value_usd=value * price,
            change_pct=change,
            window_hours=window_hours,
        )

    async def book_imbalance(self, symbol: str, depth: int = 20) -> BookImbalance:
        """A seeded book leaning with the forming bar's flow; changes every second."""
        unified, path, now = self.resolve(symbol), self._path(symbol), self.now_ms()
        index, _ = self._bar_at(path, now)
        rng = np.random.default_rng([self.seed, path.key, now // 1000, 3])
        lean = 2.0 * (float(path.column("buy_share")[index]) - 0.5)
        imbalance = float(np.clip(0.5 * lean + rng.normal(0.0, 0.2), -0.95, 0.95))
        total = path.profile.volume * 0.05 * depth * float(rng.lognormal(0.0, 0.3))
        bid, ask = total * (1 + imbalance) / 2, total * (1 - imbalance) / 2
        return BookImbalance(
            **self.origin(unified, ms_to_datetime(now)),
            imbalance=(bid - ask) / (bid + ask),
            bid_volume=bid,
            ask_volume=ask,
            depth=depth,
        )

    async def cvd(self, symbol: str, window: str = "1h") -> Cvd:
        """Taker buy/sell volume of the simulated trades over the window (not a candle estimate)."""
        unified, path, now = self.resolve(symbol), self._path(symbol), self.now_ms()
        index, elapsed = self._bar_at(path, now)
        n_bars = max(1, window_seconds(window) * 1000 // BAR_MS)
        start = max(0, index - n_bars)
        volume, share = path.column("volume")[start:index], path.column("buy_share")[start:index]
        buy, total = float(np.sum(volume * share)), float(np.sum(volume))
        forming, forming_share = path.forming(index, elapsed)
        buy += float(forming.volume[0]) * forming_share
        total += float(forming.volume[0])
        return Cvd.of(self.origin(unified, ms_to_datetime(now)), buy, total - buy, approximate=False, window=window)

    async def long_short_ratio(self, symbol: str) -> LongShortRatio | None:
        """The simulated exchange publishes one: crowds lean against the last day's move."""
        unified, path, now = self.resolve(symbol), self._path(symbol), self.now_ms()
        ret_day = self._day_return(path, now)
        noise = np.random.default_rng([self.seed, path.key, now // 300_000, 4]).normal(0.0, 0.05)
        ratio = 1.15 * math.exp(-1.5 * ret_day + noise)
        return LongShortRatio(**self.origin(unified, ms_to_datetime(now)), ratio=ratio)

    async def close(self) -> None:
        """Nothing to release."""

    # -- internals --------------------------------------------------------------------------

    def _now(self, symbol: str) -> datetime:
        return ms_to_datetime(self.now_ms())

    def _day_return(self, path: SymbolPath, now: int) -> float:
        """Log return over the last day (from the market's start when younger): what funding and the crowd follow."""
        return math.log(self._price_at(path, now) / self._price_at(path, max(self._origin_ms, now - _DAY_MS)))

    def _path(self, symbol: str) -> SymbolPath:
        base = self.resolve(symbol).split("/", 1)[0]
        path = self._paths.get(base)
        if path is None:
            path = self._paths[base] = SymbolPath(self.seed, base, self._origin_ms)
        return path

    def _bar_at(self, path: SymbolPath, now: int) -> tuple[int, int]:
        """(index of the 15m bar containing `now`, ms elapsed in it), generating bars as needed."""
        if now <= self._origin_ms:
            raise MarketDataError(f"The simulated market starts at {ms_to_datetime(self._origin_ms):%Y-%m-%d} UTC.")
        index, elapsed = divmod(now - self._origin_ms, BAR_MS)
        path.ensure(int(index) + 1)
        return int(index), int(elapsed)

    def _price_at(self, path: SymbolPath, when: int) -> float:
        index, elapsed = self._bar_at(path, when)
        return float(path.minute_path(index)[min(15, elapsed // 60_000)])

    def _oi_series(self, path: SymbolPath, index: int) -> np.ndarray:
        """Open interest per closed bar up to `index` (computed once per bar and symbol)."""
        cached = self._oi.get(path.base)
        if cached is not None and cached[0] == index:
            return cached[1]
        series = self._compute_oi_series(path, index)
        series.flags.writeable = False  # shared by every caller until the next bar
        self._oi[path.base] = (index, series)
        return series

    def _compute_oi_series(self, path: SymbolPath, index: int) -> np.ndarray:
        """Open interest per closed bar up to `index`: a slow random level times a trend-following build-up."""
        log_close = np.log(path.column("close")[: index + 1])
        # Causal filters only, so the value at a bar never depends on later bars.
        trend = log_close - pd.Series(log_close).ewm(span=288, adjust=False).mean().to_numpy()
        shocks = path.column("oi_noise")[: index + 1] * 0.004
        shocks[0] = 0.0  # ewm starts at its first input; the level starts at zero instead
        level = pd.Series(shocks / (1 - 0.999)).ewm(alpha=0.001, adjust=False).mean().to_numpy()
        stress = pd.Series(np.abs(np.diff(log_close, prepend=log_close[0])) / path.sigma_bar).ewm(span=16).mean()
        return path.profile.open_interest * np.exp(level + 2.0 * np.abs(trend) - 0.02 * stress.to_numpy())


def seed_for(text: str) -> int:
    """A stable seed from a free-text name (for per-user or per-test markets)."""
    return symbol_key(text)
