"""Liquidity pools (equal highs / equal lows) and their sweeps, each stamped when it became known.

A pool forms at swing pivot j when an earlier pivot of the same kind lies within tolerance of
it and price did not trade beyond the pair in between (resting stops above equal highs, below
equal lows). It is known at j's confirmation bar; its sweep is the first later bar trading
beyond the pool by the tolerance, an event known at that bar. No label is ever back-dated from
future bars, so appending bars only adds labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tools.structure.pivots import HIGH, Pivots


@dataclass(frozen=True, slots=True)
class LiquidityPools:
    """Pools by pivot: bar, confirmation bar, kind (+1 highs, -1 lows), level, members, sweep bar (-1 none)."""

    bar: np.ndarray
    confirmed: np.ndarray
    kind: np.ndarray
    level: np.ndarray
    members: np.ndarray
    swept_at: np.ndarray

    def labels(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-bar arrays: pool kind at the pivot bar, its level there, and +-1 at each sweep bar."""
        kind = np.zeros(n)
        level = np.full(n, np.nan)
        sweep = np.zeros(n)
        kind[self.bar] = self.kind
        level[self.bar] = self.level
        s = self.swept_at >= 0
        sweep[self.swept_at[s]] = self.kind[s]
        return kind, level, sweep


@lru_cache(maxsize=64)
def _pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    """All (later, earlier) index pairs of m items; cached, the pivot count barely varies."""
    i, j = np.tril_indices(m, -1)
    i.flags.writeable = j.flags.writeable = False
    return i, j


def _range_max(x: np.ndarray, lo: np.ndarray, hi_excl: np.ndarray) -> np.ndarray:
    """max(x[lo:hi_excl]) per pair (lo < hi_excl), one C-level reduceat over interleaved bounds."""
    padded = np.append(x, -np.inf)
    idx = np.empty(2 * len(lo), dtype=np.int64)
    idx[0::2], idx[1::2] = lo, hi_excl
    return np.maximum.reduceat(padded, idx)[0::2]


def _pools_of_kind(piv: Pivots, x: np.ndarray, atr: np.ndarray, tol_atr: float, as_of: int) -> LiquidityPools:
    """Pools of one kind on x (highs, or negated lows so one code path serves both)."""
    sign = 1.0 if piv.kind[0] == HIGH else -1.0
    p = sign * piv.price
    bar, conf = piv.bar, piv.confirmed
    tol = tol_atr * atr[conf]
    m = len(bar)
    i, j = _pairs(m)  # i: later pivot, j: earlier one
    near = np.abs(p[i] - p[j]) <= tol[i]
    i, j = i[near], j[near]  # few pairs survive: the range scan below stays cheap
    gap = bar[i] - bar[j] > 1
    inner = np.full(len(i), -np.inf)
    if gap.any():
        inner[gap] = _range_max(x, bar[j][gap] + 1, bar[i][gap])
    pair = inner <= np.maximum(p[i], p[j])
    i, j = i[pair], j[pair]
    counts = np.bincount(i, minlength=m)
    rows = np.flatnonzero(counts)
    members = counts[rows] + 1
    level = (np.bincount(i, weights=p[j], minlength=m)[rows] + p[rows]) / members
    # Sweep: first bar after confirmation trading beyond the pool level by the tolerance.
    start = conf[rows] + 1
    swept = np.full(len(rows), -1, dtype=np.int64)
    if len(rows) and as_of + 1 > start.min():
        xs = np.arange(int(start.min()), as_of + 1)
        beyond = (x[xs][None, :] > (level + tol[rows])[:, None]) & (xs[None, :] >= start[:, None])
        hit = beyond.any(axis=1)
        swept[hit] = xs[np.argmax(beyond[hit], axis=1)]
    return LiquidityPools(bar[rows], conf[rows], piv.kind[rows], sign * level, members, swept)


def liquidity_pools(
    pivots: Pivots, high: np.ndarray, low: np.ndarray, atr: np.ndarray, as_of: int, tol_atr: float = 0.25
) -> LiquidityPools:
    """Pools from pivots confirmed <= `as_of`, sweeps up to `as_of`; `atr` is the per-bar ATR series."""
    piv = pivots.as_of(as_of)
    atr = np.where(np.isfinite(atr), atr, np.nanmean(atr) if np.isfinite(atr).any() else 0.0)
    parts = []
    for kind, x in ((HIGH, high), (-HIGH, -low)):
        sel = piv.select(piv.kind == kind)
        if len(sel) >= 2:
            parts.append(_pools_of_kind(sel, x[: as_of + 1], atr, tol_atr, as_of))
    if not parts:
        e = np.empty(0, np.int64)
        return LiquidityPools(e, e, np.empty(0, np.int8), np.empty(0), e, e)
    cat = [
        np.concatenate(arrs)
        for arrs in zip(*((q.bar, q.confirmed, q.kind, q.level, q.members, q.swept_at) for q in parts), strict=True)
    ]
    order = np.argsort(cat[0], kind="stable")
    return LiquidityPools(*(a[order] for a in cat))
