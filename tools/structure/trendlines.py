"""Trendlines through pairs of pivots, validated by respect, graded 1-4; pressure points with levels."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from tools.structure.levels import NEVER, row_next
from tools.structure.pivots import HIGH, LOW, Pivots
from tools.structure.report import Role, State


@dataclass(frozen=True, slots=True)
class Trendline:
    """A line price = anchor_price + slope * (bar - anchor_bar) through swing highs or lows."""

    kind: Role  # "support" through lows, "resistance" through highs
    anchor_bar: int
    anchor_price: float
    slope: float  # price per bar
    touches: int
    first_touch: int
    last_touch: int
    confirmed_at: int
    span: int
    grade: int
    state: State
    broken_at: int | None
    value_at_as_of: float

    def value_at(self, bar: float) -> float:
        """Line price at a (possibly fractional or future) bar."""
        return self.anchor_price + self.slope * (bar - self.anchor_bar)


@dataclass(frozen=True, slots=True)
class PressurePoint:
    """Where a trendline crosses a horizontal level ahead of `as_of`."""

    bar: float
    bars_ahead: float
    price: float
    trendline_kind: Role
    trendline_grade: int
    level_grade: int


def grade_trendline(touches: np.ndarray, span: np.ndarray, long_span: int) -> np.ndarray:
    """Grade 1-4: 2 touches = 1, 3 = 2, 4+ = 3, plus one when first-to-last touch spans `long_span` bars."""
    pts = np.minimum(np.maximum(touches - 1, 1), 3) + (span >= long_span).astype(np.int64)
    return np.minimum(4, pts)


@functools.lru_cache(maxsize=64)
def _pairs(m: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, second) index of every pair of `m` pivots, first < second (np.triu_indices(m, 1), built once per m)."""
    a, b = np.triu_indices(m, 1)
    a.flags.writeable = b.flags.writeable = False
    return a, b


def _lines_of_kind(
    piv: Pivots,
    close: np.ndarray,
    as_of: int,
    kind: int,
    atr_value: float,
    max_pivots: int,
    touch_tol_atr: float,
    buffer_atr: float,
    min_gap: int,
    long_span: int,
    limit: int | None = None,
) -> list[Trendline]:
    """Candidate lines through every pair of the last `max_pivots` pivots of one kind, all checked at once;
    the `limit` strongest distinct ones (all when None)."""
    sel = piv.select(piv.kind == kind)
    bar, price, conf = sel.bar[-max_pivots:], sel.price[-max_pivots:], sel.confirmed[-max_pivots:]
    m = len(bar)
    if m < 2:
        return []
    a, b = _pairs(m)
    keep = (bar[b] - bar[a]) >= min_gap
    a, b = a[keep], b[keep]
    if len(a) == 0:
        return []
    slope = (price[b] - price[a]) / (bar[b] - bar[a])
    start = int(bar[a].min())
    xs = np.arange(start, as_of + 1)
    cl = close[start : as_of + 1]
    # Close minus line, in place (the same sums: the line is price + slope x bars, then subtracted from the close).
    gap = slope[:, None] * (xs[None, :] - bar[a][:, None])
    gap += price[a][:, None]
    np.subtract(cl[None, :], gap, out=gap)
    buf = buffer_atr * atr_value
    # Support: closes must stay above (through when under by the buffer); resistance: below.
    through = gap > buf if kind == HIGH else gap < -buf
    # Closes through each line as sorted flat indices: one binary search finds the first one from its
    # anchor (respected when it comes after the second pivot) and the first one after the second pivot.
    flat, ncol, rows = np.flatnonzero(through.ravel()), len(xs), np.arange(len(a)) * len(xs)
    col_a, col_b = bar[a] - start, bar[b] - start
    respected = row_next(flat, rows + col_a, ncol) > col_b
    after_b = col_b + 1 < ncol
    first_after = row_next(flat, rows + np.minimum(col_b + 1, ncol - 1), ncol)
    broken = after_b & (first_after < NEVER)
    broken_at = np.where(broken, start + np.where(broken, first_after, 0), as_of + 1)

    # Touches: pivots of this kind on the line (within tolerance) from its anchor until it broke.
    at_piv = price[a][:, None] + slope[:, None] * (bar[None, :] - bar[a][:, None])
    on_line = np.abs(price[None, :] - at_piv) <= touch_tol_atr * atr_value
    on_line &= (bar[None, :] >= bar[a][:, None]) & (bar[None, :] < broken_at[:, None])
    on_line[np.arange(len(a)), a] = True
    on_line[np.arange(len(a)), b] = True
    touches = on_line.sum(axis=1)
    last_idx = m - 1 - np.argmax(on_line[:, ::-1], axis=1)
    last_touch = bar[last_idx]
    span = last_touch - bar[a]
    grades = grade_trendline(touches, span, long_span)

    cands = np.flatnonzero(respected)
    # Strongest first: holding before broken, then grade, touches, most recent last touch (a stable
    # lexsort of the candidates in index order, as a sort on that key tuple would give).
    order = cands[np.lexsort((-last_touch[cands], -touches[cands], -grades[cands], broken[cands]))].tolist()
    masks = (on_line.astype(np.int64) << np.arange(m)).sum(axis=1).tolist()
    kept: list[int] = []
    for i in order:
        if limit is not None and len(kept) >= limit:
            break  # only the strongest `limit` are shown; the rest need no dedup
        # Two lines sharing two touch pivots are the same line drawn twice.
        mi = masks[i]
        if any((mi & masks[j]).bit_count() >= 2 for j in kept):
            continue
        kept.append(i)
    name: Role = "resistance" if kind == HIGH else "support"
    return [
        Trendline(
            kind=name,
            anchor_bar=int(bar[a[i]]),
            anchor_price=float(price[a[i]]),
            slope=float(slope[i]),
            touches=int(touches[i]),
            first_touch=int(bar[a[i]]),
            last_touch=int(last_touch[i]),
            confirmed_at=int(conf[on_line[i]].max()),
            span=int(span[i]),
            grade=int(grades[i]),
            state="broken" if broken[i] else "holding",
            broken_at=int(broken_at[i]) if broken[i] else None,
            value_at_as_of=float(price[a[i]] + slope[i] * (as_of - bar[a[i]])),
        )
        for i in kept
    ]


def detect_trendlines(
    pivots: Pivots,
    close: np.ndarray,
    as_of: int,
    atr_value: float,
    max_pivots: int = 12,
    touch_tol_atr: float = 0.25,
    buffer_atr: float = 0.1,
    min_gap: int = 5,
    long_span: int = 60,
    per_side: int = 3,
) -> list[Trendline]:
    """Best `per_side` support and resistance trendlines from pivots confirmed <= `as_of`."""
    out: list[Trendline] = []
    for kind in (LOW, HIGH):
        lines = _lines_of_kind(
            pivots, close, as_of, kind, atr_value, max_pivots, touch_tol_atr, buffer_atr, min_gap, long_span, per_side
        )
        out.extend(lines)
    return out


def pressure_points(
    lines: list[Trendline], level_prices: np.ndarray, level_grades: np.ndarray, as_of: int, horizon: int
) -> list[PressurePoint]:
    """Crossings of holding trendlines with levels within `horizon` bars after `as_of`, soonest first."""
    out: list[PressurePoint] = []
    for ln in lines:
        if ln.state != "holding" or ln.slope == 0.0 or len(level_prices) == 0:
            continue
        x = ln.anchor_bar + (level_prices - ln.anchor_price) / ln.slope
        ok = (x >= as_of) & (x <= as_of + horizon)
        for j in np.flatnonzero(ok):
            out.append(
                PressurePoint(
                    bar=float(x[j]),
                    bars_ahead=float(x[j] - as_of),
                    price=float(level_prices[j]),
                    trendline_kind=ln.kind,
                    trendline_grade=ln.grade,
                    level_grade=int(level_grades[j]),
                )
            )
    return sorted(out, key=lambda p: p.bars_ahead)
