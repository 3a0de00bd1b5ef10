"""Auto-support: the pivot scan at 16 sensitivities, merged into zones scored by agreement.

Score (0..1) = 0.5 x share of the 16 sensitivities that found a pivot in the zone
             + 0.3 x min(touches, 5) / 5 (distinct pivot bars)
             + 0.2 x recency (halves every window/8 bars since the last touch).
The best `top / 2` zones on each side of the close are kept (so a long trend does not leave
one side empty), and the priority rank orders them by score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.structure.cluster import cluster_ids, greedy_cluster_starts
from tools.structure.report import Role


@dataclass(frozen=True, slots=True)
class SupportZone:
    """One merged zone of the multi-sensitivity scan."""

    price: float
    zone_low: float
    zone_high: float
    sensitivities: int
    touches: int
    last_touch: int
    score: float
    rank: int
    role: Role


def multi_sensitivity_pivots(
    high: np.ndarray, low: np.ndarray, sensitivities: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pivots at every (left, right) sensitivity: (bar, price, kind, sensitivity index), slice-local bars.

    Window maxima grow one bar at a time, so all 16 scans cost about as much as the widest one.
    """
    n = len(high)
    need = {left for left, _ in sensitivities} | {right for _, right in sensitivities}
    wmax = max(need)
    xs = (high, -low)
    lmax = [np.full(n, -np.inf) for _ in xs]
    rmax = [np.full(n, -np.inf) for _ in xs]
    lsnap: dict[int, list[np.ndarray]] = {}
    rsnap: dict[int, list[np.ndarray]] = {}
    for w in range(1, min(wmax, n - 1) + 1):
        for s, x in enumerate(xs):
            np.maximum(lmax[s][w:], x[: n - w], out=lmax[s][w:])
            np.maximum(rmax[s][: n - w], x[w:], out=rmax[s][: n - w])
        if w in need:
            lsnap[w] = [a.copy() for a in lmax]
            rsnap[w] = [a.copy() for a in rmax]
    bars, prices, kinds, sens = [], [], [], []
    idx = np.arange(n)
    for k, (left, right) in enumerate(sensitivities):
        if left not in lsnap or right not in rsnap:
            continue
        valid = (idx >= left) & (idx < n - right)
        for s, x in enumerate(xs):
            hit = np.flatnonzero(valid & (x > lsnap[left][s]) & (x >= rsnap[right][s]))
            bars.append(hit)
            prices.append(high[hit] if s == 0 else low[hit])
            kinds.append(np.full(len(hit), 1 if s == 0 else -1, np.int8))
            sens.append(np.full(len(hit), k, np.int64))
    if not bars:
        empty = np.empty(0, np.int64)
        return empty, np.empty(0), np.empty(0, np.int8), empty
    return np.concatenate(bars), np.concatenate(prices), np.concatenate(kinds), np.concatenate(sens)


def auto_support(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    as_of: int,
    window_start: int,
    atr_value: float,
    sensitivities: tuple[tuple[int, int], ...],
    tol_atr: float = 0.5,
    top: int = 8,
) -> list[SupportZone]:
    """Zones from the scan over bars <= `as_of`, pivots inside the window, ranked by score."""
    max_left = max(left for left, _ in sensitivities)
    s0 = max(0, window_start - max_left)
    h, lo = high[s0 : as_of + 1], low[s0 : as_of + 1]
    bar, price, _kind, sens = multi_sensitivity_pivots(h, lo, sensitivities)
    bar = bar + s0
    keep = bar >= window_start
    bar, price, sens = bar[keep], price[keep], sens[keep]
    if len(bar) == 0:
        return []
    order = np.argsort(price, kind="stable")
    bar, price, sens = bar[order], price[order], sens[order]
    starts = greedy_cluster_starts(price, tol_atr * atr_value)
    cid = cluster_ids(starts, len(price))
    nclu = len(starts)
    counts = np.diff(np.append(starts, len(price)))
    mean = np.add.reduceat(price, starts) / counts
    bits = np.bitwise_or.reduceat(np.left_shift(np.int64(1), sens), starts)
    n_sens = np.bitwise_count(bits).astype(np.int64)
    span = as_of + 2
    touches = np.bincount(np.unique(cid * span + bar) // span, minlength=nclu)
    last = np.maximum.reduceat(bar, starts)
    zlo = price[starts]
    zhi = price[starts + counts - 1]
    half_life = max(1.0, (as_of - window_start + 1) / 8)
    recency = 0.5 ** ((as_of - last) / half_life)
    score = 0.5 * n_sens / len(sensitivities) + 0.3 * np.minimum(touches, 5) / 5 + 0.2 * recency
    c = float(close[as_of])
    by_score = np.argsort(-score, kind="stable")
    below = by_score[mean[by_score] < c][: top // 2]
    above = by_score[mean[by_score] >= c][: top - len(below)]
    ranked = np.concatenate((below, above))
    ranked = ranked[np.argsort(-score[ranked], kind="stable")]
    return [
        SupportZone(
            price=float(mean[j]),
            zone_low=float(zlo[j]),
            zone_high=float(zhi[j]),
            sensitivities=int(n_sens[j]),
            touches=int(touches[j]),
            last_touch=int(last[j]),
            score=round(float(score[j]), 4),
            rank=r + 1,
            role="support" if mean[j] < c else "resistance",
        )
        for r, j in enumerate(ranked)
    ]
