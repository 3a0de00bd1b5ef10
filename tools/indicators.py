"""Small vectorised indicators shared by market data, structure analysis and the risk engine."""

from __future__ import annotations

import numpy as np
import pandas as pd


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range per bar; the first bar uses its own high-low."""
    prev_close = np.empty_like(close)
    prev_close[0] = close[0]
    prev_close[1:] = close[:-1]
    return np.maximum(high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close)))


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """Wilder's ATR; NaN until `period` bars exist. Bar t uses only bars <= t."""
    high, low, close = (np.asarray(a, dtype=np.float64) for a in (high, low, close))
    n = len(close)
    out = np.full(n, np.nan)
    if n < period:
        return out
    tr = true_range(high, low, close)
    # Wilder smoothing = EMA with alpha 1/period, seeded by the simple mean of the first window.
    seeded = np.concatenate(([tr[:period].mean()], tr[period:]))
    out[period - 1 :] = pd.Series(seeded).ewm(alpha=1.0 / period, adjust=False).mean().to_numpy()
    return out


def atr_last(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> float:
    """`atr(...)[-1]` without the series: Wilder's recursion unrolled into one weighted sum (NaN under `period` bars).

    The structure pass needs only the ATR at its bar, once per evaluated bar; the pandas EWM of the whole window
    cost ten times this.
    """
    high, low, close = (np.asarray(a, dtype=np.float64) for a in (high, low, close))
    if len(close) < period:
        return float("nan")
    tr = true_range(high, low, close)
    rest = tr[period:]
    keep = 1.0 - 1.0 / period
    # y_m = keep^m * seed + (1 - keep) * sum_j keep^(m-1-j) * rest[j]; the weights underflow to 0, never overflow.
    weights = keep ** np.arange(len(rest) - 1, -1, -1, dtype=np.float64)
    return float(keep ** len(rest) * tr[:period].mean() + (1.0 - keep) * np.dot(weights, rest))


def atr_frame(df: pd.DataFrame, period: int = 14) -> pd.Series:
    """ATR of an OHLCV frame as a Series on its index."""
    return pd.Series(atr(df["high"].to_numpy(), df["low"].to_numpy(), df["close"].to_numpy(), period), index=df.index)
