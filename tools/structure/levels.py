"""Horizontal support/resistance levels from clustered pivots: touches, grade, role, state, breaks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tools.structure.cluster import greedy_cluster_starts
from tools.structure.pivots import HIGH, Pivots
from tools.structure.report import BreakDirection, Role, State


@dataclass(frozen=True, slots=True)
class Level:
    """One horizontal level; bars are frame indices, `confirmed_at` is when its last pivot was known."""

    price: float
    zone_low: float
    zone_high: float
    touches: int
    highs: int
    lows: int
    first_touch: int
    last_touch: int
    confirmed_at: int
    grade: int
    role: Role  # "support" below the close, "resistance" at or above it
    state: State
    broken_at: int | None
    break_direction: BreakDirection | None  # "up" (resistance broken) or "down" (support broken)


def grade_level(touches: np.ndarray, highs: np.ndarray, lows: np.ndarray) -> np.ndarray:
    """Grade 1-3: one per touch up to three, plus one for a role flip (both highs and lows) at 2+ touches."""
    grade = np.clip(touches, 1, 3)
    flipped = (highs > 0) & (lows > 0) & (touches >= 2)
    return np.minimum(3, grade + flipped.astype(np.int64))


def detect_levels(
    pivots: Pivots,
    close: np.ndarray,
    as_of: int,
    atr_value: float,
    tol_atr: float = 0.5,
    break_buffer_atr: float = 0.1,
) -> list[Level]:
    """Cluster pivots (already filtered to those confirmed <= as_of) into levels, sorted by price.

    State: a level last touched from below (a swing high) is broken by a later close above
    price + buffer, one last touched from above by a close below price - buffer. Only closes
    after its last touch and up to `as_of` count.
    """
    if len(pivots) == 0:
        return []
    order = np.argsort(pivots.price, kind="stable")
    price, bar = pivots.price[order], pivots.bar[order]
    conf, kind = pivots.confirmed[order], pivots.kind[order]
    starts = greedy_cluster_starts(price, tol_atr * atr_value)

    counts = np.diff(np.append(starts, len(price)))
    mean = np.add.reduceat(price, starts) / counts
    highs = np.add.reduceat((kind == HIGH).astype(np.int64), starts)
    lows = counts - highs
    first = np.minimum.reduceat(bar, starts)
    # Encode kind into the bar so one max gives the last touch and whether it was a high.
    last_key = np.maximum.reduceat(bar * 2 + (kind == HIGH), starts)
    last, last_high = last_key // 2, (last_key % 2).astype(bool)
    grades = grade_level(counts, highs, lows)

    start = int(max(0, first.min()))
    closes = close[start : as_of + 1]
    bars = np.arange(start, as_of + 1)
    buf = break_buffer_atr * atr_value
    after = bars[None, :] > last[:, None]
    up = closes[None, :] > (mean + buf)[:, None]
    down = closes[None, :] < (mean - buf)[:, None]
    brk = after & np.where(last_high[:, None], up, down)
    has_break = np.asarray(brk.any(axis=1), dtype=bool)
    broken_at = np.where(has_break, bars[np.argmax(brk, axis=1)], -1)

    last_close = float(close[as_of])
    out: list[Level] = []
    for j in range(len(starts)):
        lo_i, hi_i = starts[j], starts[j] + counts[j] - 1
        out.append(
            Level(
                price=float(mean[j]),
                zone_low=float(price[lo_i]),
                zone_high=float(price[hi_i]),
                touches=int(counts[j]),
                highs=int(highs[j]),
                lows=int(lows[j]),
                first_touch=int(first[j]),
                last_touch=int(last[j]),
                confirmed_at=int(conf[lo_i : hi_i + 1].max()),
                grade=int(grades[j]),
                role="support" if mean[j] < last_close else "resistance",
                state="broken" if has_break[j] else "holding",
                broken_at=int(broken_at[j]) if has_break[j] else None,
                break_direction=("up" if last_high[j] else "down") if has_break[j] else None,
            )
        )
    return out


def nearest_levels(levels: list[Level], close: float, per_side: int) -> list[Level]:
    """The `per_side` closest supports and resistances, sorted by price."""
    sup = sorted((lv for lv in levels if lv.role == "support"), key=lambda lv: close - lv.price)[:per_side]
    res = sorted((lv for lv in levels if lv.role == "resistance"), key=lambda lv: lv.price - close)[:per_side]
    return sorted(sup + res, key=lambda lv: lv.price)


def recent_major_breaks(levels: list[Level], as_of: int, recent_bars: int, min_grade: int = 3) -> list[Level]:
    """Levels of grade >= `min_grade` broken within the last `recent_bars` bars up to `as_of`."""
    return [
        lv for lv in levels if lv.grade >= min_grade and lv.broken_at is not None and as_of - lv.broken_at < recent_bars
    ]
