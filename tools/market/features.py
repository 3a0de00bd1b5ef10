"""Pure derived features shared by all providers: frames, resampling, CVD, volatility regime, imbalance."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tools.indicators import atr
from tools.market.base import OHLCV_COLUMNS, TIMEFRAME_SECONDS, MarketDataError, Volatility, VolRegime

ATR_PERIOD = 14
# Percentile cut-offs of the regime buckets: the bottom fifth is quiet, the top 5% is exceptional.
REGIME_BOUNDS: tuple[tuple[float, VolRegime], ...] = ((20.0, "LOW"), (80.0, "NORMAL"), (95.0, "HIGH"))
_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def timeframe_seconds(timeframe: str) -> int:
    """Seconds per candle of a supported timeframe; MarketDataError otherwise."""
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise MarketDataError(
            f"Unsupported timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_SECONDS)}."
        ) from None


def window_seconds(window: str) -> int:
    """Seconds in a window such as '30m', '1h', '4h', '1d'."""
    match = _WINDOW.match(window)
    if not match:
        raise MarketDataError(f"Window {window!r} is not like '15m', '1h' or '1d'.")
    seconds = int(float(match.group(1)) * _UNIT_S[match.group(2).lower()])
    if seconds <= 0:
        raise MarketDataError(f"Window {window!r} must be positive.")
    return seconds


@dataclass(frozen=True, slots=True)
class OhlcvArrays:
    """Candles as parallel numpy arrays; `ts` is the open time in ms (int64), ascending."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def slice(self, start: int, stop: int) -> OhlcvArrays:
        """Rows [start, stop) as views (no copy)."""
        return OhlcvArrays(*(a[start:stop] for a in self.columns()))

    def columns(self) -> tuple[np.ndarray, ...]:
        """(ts, open, high, low, close, volume)."""
        return (self.ts, self.open, self.high, self.low, self.close, self.volume)

    @classmethod
    def empty(cls) -> OhlcvArrays:
        """No candles."""
        return cls(np.empty(0, np.int64), *(np.empty(0) for _ in range(5)))

    @classmethod
    def concat(cls, parts: Sequence[OhlcvArrays]) -> OhlcvArrays:
        """Join candle blocks in order."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate(cols) for cols in zip(*(p.columns() for p in parts), strict=True)))

    def to_frame(self) -> pd.DataFrame:
        """The OHLCV frame contract: UTC DatetimeIndex 'time', float64 columns."""
        index = pd.DatetimeIndex(pd.to_datetime(self.ts, unit="ms", utc=True), name="time")
        data = {"open": self.open, "high": self.high, "low": self.low, "close": self.close, "volume": self.volume}
        return pd.DataFrame(data, index=index, columns=list(OHLCV_COLUMNS), dtype=np.float64, copy=True)


def rows_to_arrays(rows: Iterable[Sequence[Any]]) -> OhlcvArrays:
    """ccxt-style [[ts, o, h, l, c, v], ...] rows as arrays, sorted and de-duplicated by time."""
    data = np.asarray([list(r[:6]) for r in rows], dtype=np.float64).reshape(-1, 6)
    ts = data[:, 0].astype(np.int64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[:-1] = ts[1:] != ts[:-1]  # keep the last row of a duplicated time (the freshest update)
    data = data[order][keep]
    return OhlcvArrays(ts[keep], *(np.nan_to_num(data[:, i], nan=0.0) for i in range(1, 6)))


def resample(arrays: OhlcvArrays, target_ms: int) -> OhlcvArrays:
    """Aggregate candles into `target_ms` buckets aligned to UTC epoch boundaries (gaps tolerated)."""
    if len(arrays) == 0:
        return OhlcvArrays.empty()
    bucket = (arrays.ts // target_ms) * target_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)] - 1
    return OhlcvArrays(
        bucket[starts],
        arrays.open[starts],
        np.maximum.reduceat(arrays.high, starts),
        np.minimum.reduceat(arrays.low, starts),
        arrays.close[ends],
        np.add.reduceat(arrays.volume, starts),
    )


def cvd_from_candles(frame: pd.DataFrame) -> tuple[float, float]:
    """(buy volume, sell volume) estimated from candles: the close's position in the range splits volume.

    A close at the high counts the whole candle as buying, at the low as selling; a flat candle
    splits evenly. It is a proxy for taker flow, so callers must flag the result approximate.
    """
    if frame.empty:
        return 0.0, 0.0
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    close, volume = frame["close"].to_numpy(), frame["volume"].to_numpy()
    span = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        buy_share = np.where(span > 0, (close - low) / span, 0.5)
    buy = float(np.sum(volume * buy_share))
    return buy, float(np.sum(volume)) - buy


def cvd_from_trades(trades: Iterable[dict[str, Any]]) -> tuple[float, float]:
    """(buy volume, sell volume) of taker trades in ccxt's unified trade format."""
    buy = sell = 0.0
    for trade in trades:
        amount = float(trade.get("amount") or 0.0)
        if trade.get("side") == "buy":
            buy += amount
        elif trade.get("side") == "sell":
            sell += amount
    return buy, sell


def book_imbalance(
    bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], depth: int
) -> tuple[float, float, float]:
    """(imbalance, bid volume, ask volume) over the top `depth` levels; imbalance in -1..1."""
    bid_volume = float(sum(float(level[1]) for level in bids[:depth]))
    ask_volume = float(sum(float(level[1]) for level in asks[:depth]))
    total = bid_volume + ask_volume
    if total <= 0:
        raise MarketDataError("The order book is empty; no imbalance can be computed.")
    return (bid_volume - ask_volume) / total, bid_volume, ask_volume


@dataclass(frozen=True, slots=True)
class VolatilityReading:
    """ATR(14) of the newest candle, as % of price, and its percentile over the lookback."""

    atr: float
    atr_pct_of_price: float
    percentile: float
    regime: VolRegime


def regime_for(percentile: float) -> VolRegime:
    """Bucket an ATR percentile: <20 LOW, <80 NORMAL, <95 HIGH, else EXTREME."""
    for bound, regime in REGIME_BOUNDS:
        if percentile < bound:
            return regime
    return "EXTREME"


def volatility_regime(frame: pd.DataFrame, lookback: int = 500) -> VolatilityReading:
    """ATR(14) percentile of the newest candle among the last `lookback` ATR values.

    ATR is taken relative to price so a regime does not drift just because the price doubled.
    """
    if len(frame) < ATR_PERIOD + 2:
        raise MarketDataError(f"Need at least {ATR_PERIOD + 2} candles for a volatility regime, got {len(frame)}.")
    close = frame["close"].to_numpy(dtype=np.float64)
    values = atr(frame["high"].to_numpy(), frame["low"].to_numpy(), close, ATR_PERIOD)
    rel = values / close
    rel = rel[~np.isnan(rel)][-lookback:]
    current = float(rel[-1])
    # Percent of the window strictly below now, plus half the ties: a flat history reads as the 50th.
    below = np.count_nonzero(rel < current)
    equal = np.count_nonzero(rel == current)
    percentile = 100.0 * (below + 0.5 * equal) / len(rel)
    return VolatilityReading(
        atr=float(values[-1]),
        atr_pct_of_price=100.0 * current,
        percentile=min(100.0, max(0.0, percentile)),
        regime=regime_for(percentile),
    )


def volatility_of(frame: pd.DataFrame, timeframe: str, lookback: int, timestamp: datetime) -> Volatility:
    """The Volatility value of a provider's OHLCV frame (its attrs name symbol and source); the candle
    still forming is left out, so every provider reads the regime from closed candles only."""
    closed = frame.iloc[:-1] if frame.attrs.get("forming") else frame
    reading = volatility_regime(closed, lookback)
    return Volatility(
        symbol=str(frame.attrs["symbol"]),
        source=str(frame.attrs["source"]),
        simulated=bool(frame.attrs.get("simulated", False)),
        timestamp=timestamp,
        timeframe=timeframe,
        atr=reading.atr,
        atr_pct_of_price=reading.atr_pct_of_price,
        percentile=reading.percentile,
        regime=reading.regime,
    )
