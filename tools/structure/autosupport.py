"""Auto-support: the pivot scan at 16 sensitivities, merged into zones scored by agreement.

Score (0..1) = 0.5 x share of the 16 sensitivities that found a pivot in the zone
             + 0.3 x min(touches, 5) / 5 (distinct pivot bars)
             + 0.2 x recency (halves every window/8 bars since the last touch).
The best `top / 2` zones on each side of the close are kept (so a long trend does not leave
one side empty), and the priority rank orders them by score.
"""

from __future__ import annotations

import functools
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


def _run_lengths(x: np.ndarray, reach: int, before: bool, strict: bool) -> np.ndarray:
    """Per row of `x` (rows x bars) and bar, how many consecutive bars before it (`before`) or after it stay under
    it (strictly when `strict`, else ties allowed), counted up to `reach`: one pass of contiguous slices per
    distance, every row at once."""
    n = x.shape[1]
    # Counts up to `reach` (tens) in bytes: adding a bool view to bytes is the cheapest add numpy has.
    run = np.zeros(x.shape, dtype=np.uint8 if reach < 256 else np.int64)
    alive = np.ones(x.shape, dtype=bool)
    for w in range(1, min(reach, n - 1) + 1):
        if before:
            alive[:, :w] = False
            alive[:, w:] &= (x[:, :-w] < x[:, w:]) if strict else (x[:, :-w] <= x[:, w:])
        else:
            alive[:, n - w :] = False
            alive[:, :-w] &= (x[:, w:] < x[:, :-w]) if strict else (x[:, w:] <= x[:, :-w])
        run += alive.view(np.uint8) if run.dtype == np.uint8 else alive
    return run.astype(np.int64)


@functools.lru_cache(maxsize=8)
def _windows(sensitivities: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(lefts, rights, whether both only widen) of a sensitivity list (the same 16 at every analysed bar)."""
    lefts = np.array([left for left, _ in sensitivities], dtype=np.int64)
    rights = np.array([right for _, right in sensitivities], dtype=np.int64)
    lefts.flags.writeable = rights.flags.writeable = False
    return lefts, rights, bool(np.all(np.diff(lefts) >= 0) and np.all(np.diff(rights) >= 0))


def multi_sensitivity_pivots(
    high: np.ndarray, low: np.ndarray, sensitivities: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pivots at every (left, right) sensitivity: (bar, price, kind, sensitivity index), slice-local bars.

    A bar is a pivot at (left, right) when the `left` bars before it are all strictly lower and the
    `right` after it no higher (the rule of `pivot_mask`): one count of each run per bar answers all 16.
    """
    n = len(high)
    lefts, rights, nested = _windows(tuple(sensitivities))
    usable = (lefts < n) & (rights < n)
    both = np.stack((high, -low))  # swing highs of the highs, swing lows as highs of the negated lows
    lruns = _run_lengths(both, int(lefts.max()), True, True)
    rruns = _run_lengths(both, int(rights.max()), False, False)
    runs = [(lruns[0], rruns[0]), (lruns[1], rruns[1])]
    kk, ss, bb = [], [], []
    for s, (lrun, rrun) in enumerate(runs):
        if nested:
            # Windows that only widen: a bar found at one is found at every narrower one, so it is a pivot
            # at sensitivities 0..K with K the widest its runs allow (one expansion instead of 16 scans).
            top = np.minimum(np.searchsorted(lefts, lrun, "right"), np.searchsorted(rights, rrun, "right"))
            bar = np.flatnonzero(top > 0)
            reps = top[bar]
            k = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
            bar = np.repeat(bar, reps)
        else:
            hits = [np.flatnonzero((lrun >= lefts[k]) & (rrun >= rights[k])) for k in range(len(lefts))]
            k = np.repeat(np.arange(len(lefts)), [len(h) for h in hits])
            bar = np.concatenate(hits)
        keep = usable[k]
        kk.append(k[keep])
        bb.append(bar[keep])
        ss.append(np.full(int(keep.sum()), s, np.int64))
    k, s_, bar = np.concatenate(kk), np.concatenate(ss), np.concatenate(bb)
    # Ordered by sensitivity, then highs before lows, then bar: the order of one scan per sensitivity.
    order = np.lexsort((bar, s_, k))
    k, s_, bar = k[order], s_[order], bar[order]
    price = np.where(s_ == 0, high[bar], low[bar]) if len(bar) else np.empty(0)
    kind = np.where(s_ == 0, 1, -1).astype(np.int8)
    return bar.astype(np.int64), price.astype(np.float64), kind, k.astype(np.int64)


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
