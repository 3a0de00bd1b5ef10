"""Lookahead-free swing pivots: a pivot at bar i is only known at its confirmation bar i + right."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIGH = 1
LOW = -1


def rolling_max(x: np.ndarray, width: int) -> np.ndarray:
    """r[j] = max(x[j : j + width]) for j in 0..len(x) - width, by doubling (O(n log width))."""
    n = len(x)
    if width <= 0 or width > n:
        return np.empty(0, dtype=x.dtype)
    cur, span = x, 1
    # Grow a power-of-two window, then cover `width` with two overlapping ones.
    while span * 2 <= width:
        cur = np.maximum(cur[:-span], cur[span:])
        span *= 2
    m = n - width + 1
    return np.maximum(cur[:m], cur[width - span : width - span + m])


@dataclass(frozen=True, slots=True)
class Pivots:
    """Swing pivots sorted by bar: pivot bar, confirmation bar, price and kind (+1 high, -1 low)."""

    bar: np.ndarray
    confirmed: np.ndarray
    price: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.bar)

    def select(self, mask: np.ndarray) -> Pivots:
        """The pivots where `mask` is true."""
        return Pivots(self.bar[mask], self.confirmed[mask], self.price[mask], self.kind[mask])

    def as_of(self, as_of: int) -> Pivots:
        """Only pivots confirmed at or before bar `as_of` (the no-lookahead filter)."""
        return self.select(self.confirmed <= as_of)

    def highs(self) -> Pivots:
        """Only swing highs."""
        return self.select(self.kind == HIGH)

    def lows(self) -> Pivots:
        """Only swing lows."""
        return self.select(self.kind == LOW)

    def shifted(self, offset: int) -> Pivots:
        """The same pivots with bar numbers moved by `offset` (slice-local to frame-global)."""
        return Pivots(self.bar + offset, self.confirmed + offset, self.price, self.kind)


def pivot_mask(x: np.ndarray, left: int, right: int) -> np.ndarray:
    """Bars whose value beats the `left` bars before strictly and ties-or-beats the `right` after.

    Strict on the left, non-strict on the right, so a flat top yields exactly one pivot (its
    first bar). Bar i depends only on bars i-left..i+right, so appending bars never changes it.
    """
    n = len(x)
    out = np.zeros(n, dtype=bool)
    if n < left + right + 1:
        return out
    lmax = rolling_max(x, left)  # lmax[j] = max(x[j:j+left]) -> left window of bar j+left
    rmax = rolling_max(x, right)  # rmax[j] -> right window of bar j-1
    centre = x[left : n - right]
    out[left : n - right] = (centre > lmax[: n - right - left]) & (centre >= rmax[left + 1 :])
    return out


def find_pivots(high: np.ndarray, low: np.ndarray, left: int = 20, right: int = 15, as_of: int | None = None) -> Pivots:
    """All pivots of the bars up to `as_of` (default: the last bar), each confirmed `right` bars later."""
    if as_of is not None:
        high, low = high[: as_of + 1], low[: as_of + 1]
    hi = np.flatnonzero(pivot_mask(high, left, right))
    lo = np.flatnonzero(pivot_mask(-low, left, right))
    bar = np.concatenate((hi, lo))
    order = np.argsort(bar, kind="stable")
    bar = bar[order]
    price = np.concatenate((high[hi], low[lo]))[order]
    kind = np.concatenate((np.full(len(hi), HIGH, np.int8), np.full(len(lo), LOW, np.int8)))[order]
    return Pivots(bar.astype(np.int64), bar.astype(np.int64) + right, price.astype(np.float64), kind)


def pivot_labels(n: int, pivots: Pivots) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar labels (+1 high, -1 low, 0 none; NaN-free) and levels (NaN where no pivot)."""
    lab = np.zeros(n, dtype=np.int8)
    lvl = np.full(n, np.nan)
    # A bar can be both a swing high and a swing low (outside bar); the later entry (low) wins here.
    lab[pivots.bar] = pivots.kind
    lvl[pivots.bar] = pivots.price
    return lab, lvl


def market_trend(pivots: Pivots) -> int:
    """+1 for higher high and higher low, -1 for lower high and lower low, else 0 (last two of each)."""
    h, lo = pivots.highs().price, pivots.lows().price
    if len(h) < 2 or len(lo) < 2:
        return 0
    if h[-1] > h[-2] and lo[-1] > lo[-2]:
        return 1
    if h[-1] < h[-2] and lo[-1] < lo[-2]:
        return -1
    return 0
