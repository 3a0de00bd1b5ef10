"""Worth of displayed levels (SPEC section 4): reaction rate against random zones treated exactly alike.

A reaction: price touches the zone after the evaluation bar and then moves `react_atr` ATRs away
from it before a close beyond it. Displayed levels come from bars <= t only (pivots confirmed by
t); outcomes read bars t+1..t+horizon. The random zones sit at the same bars, sides, distances and
widths, as many per bar, and none is one the level pass would call broken (a displayed level never
is). Pure and vectorised: one matrix of lines x horizon bars.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tools.structure.analysis import atr_as_of, level_pass, shown_rows
from tools.structure.config import DEFAULT_CONFIG, StructureConfig
from tools.structure.levels import Level
from tools.structure.pivots import find_pivots
from tools.structure.segments import RowSegments

_NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class LineOutcomes:
    """Per line: touched within the horizon, reacted after the touch, closed through at any time."""

    touched: np.ndarray
    reacted: np.ndarray
    broken: np.ndarray

    def reaction_rate(self, mask: np.ndarray | None = None) -> float:
        """Reactions per touch (NaN when nothing was touched)."""
        m = np.ones(len(self.touched), bool) if mask is None else mask
        n = int(self.touched[m].sum())
        return float(self.reacted[m].sum() / n) if n else float("nan")


@dataclass(frozen=True, slots=True)
class DisplayedLevels:
    """Every displayed level over a series of evaluation bars, one row per (bar, level)."""

    t: np.ndarray
    price: np.ndarray
    width: np.ndarray  # zone_high - zone_low
    atr: np.ndarray
    grade: np.ndarray
    touches: np.ndarray
    broken_now: np.ndarray  # state "broken" when displayed (should be none)
    eval_bars: np.ndarray

    def select(self, mask: np.ndarray) -> DisplayedLevels:
        """The rows where `mask` is true (same evaluation bars)."""
        return DisplayedLevels(
            self.t[mask],
            self.price[mask],
            self.width[mask],
            self.atr[mask],
            self.grade[mask],
            self.touches[mask],
            self.broken_now[mask],
            self.eval_bars,
        )

    def distance_atr(self, close: np.ndarray) -> np.ndarray:
        """Signed distance from the close at the evaluation bar, in ATRs."""
        return (self.price - close[self.t]) / self.atr


def _first(mask: np.ndarray) -> np.ndarray:
    """Column of the first true per row, _NEVER where none."""
    anyv = mask.any(axis=1)
    return np.where(anyv, np.argmax(mask, axis=1), _NEVER)


def line_outcomes(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    t: np.ndarray,
    price: np.ndarray,
    atr: np.ndarray,
    horizon: int = 100,
    width: np.ndarray | None = None,
    touch_tol_atr: float = 0.25,
    react_atr: float = 1.0,
    buffer_atr: float = 0.1,
) -> LineOutcomes:
    """Outcomes of horizontal zones drawn at bar `t` (below close[t]: a support, above: a resistance).

    A zone is `price` +- `width`/2 (default: a line). A touch reaches its near edge (within the
    touch tolerance), a break is a close beyond its far edge, a reaction a move `react_atr` ATRs
    off its near edge. Every t must leave `horizon` bars after it. The touch bar's own high/low does not count as
    the reaction (its order inside the bar is unknown); its close does count as a break.
    """
    t = np.asarray(t, dtype=np.int64)
    if len(t) == 0:
        e = np.zeros(0, bool)
        return LineOutcomes(e, e, e)
    if t.max() + horizon >= len(close):
        raise ValueError("every evaluation bar needs `horizon` bars after it")
    rows = t + 1
    hi = sliding_window_view(high, horizon)[rows]
    lo = sliding_window_view(low, horizon)[rows]
    cl = sliding_window_view(close, horizon)[rows]
    half = np.zeros(len(t)) if width is None else np.asarray(width) / 2
    p_lo, p_hi, a = (price - half)[:, None], (price + half)[:, None], atr[:, None]
    support = (price < close[t])[:, None]
    touch = np.where(support, lo <= p_hi + touch_tol_atr * a, hi >= p_lo - touch_tol_atr * a)
    beyond = np.where(support, cl < p_lo - buffer_atr * a, cl > p_hi + buffer_atr * a)
    away = np.where(support, hi >= p_hi + react_atr * a, lo <= p_lo - react_atr * a)
    k0 = _first(touch)
    touched = k0 < _NEVER
    cols = np.arange(horizon)[None, :]
    k0c = np.where(touched, k0, horizon)[:, None]
    brk = _first(beyond & (cols >= k0c))
    rea = _first(away & (cols > k0c))
    reacted = touched & (rea < brk)
    broken = _first(beyond) < _NEVER
    return LineOutcomes(touched, reacted, broken)


def displayed_levels(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    eval_bars: np.ndarray,
    cfg: StructureConfig = DEFAULT_CONFIG,
    on_bar: Callable[[int, float, list[Level]], None] | None = None,
) -> DisplayedLevels:
    """The levels the analysis displays at each evaluation bar, from data known at that bar only
    (`on_bar(t, atr, shown)` sees each bar's displayed levels, e.g. to plan trades on them)."""
    piv_all = find_pivots(high, low, cfg.left, cfg.right)
    cols: dict[str, list[float]] = {k: [] for k in ("t", "price", "width", "atr", "grade", "touches", "broken")}
    for t in eval_bars.tolist():
        ws = max(0, t - cfg.window + 1)
        # Same pivots as the live slice: a pivot's mask reads bars within its window only.
        piv = piv_all.select((piv_all.confirmed <= t) & (piv_all.bar >= max(ws, cfg.left)))
        a = atr_as_of(high, low, close, t, cfg)
        table = level_pass(high, low, close, volume, t, a, piv, ws, cfg)
        shown = table.levels(shown_rows(table, cfg))
        if on_bar is not None:
            on_bar(t, a, shown)
        for lv in shown:
            cols["t"].append(t)
            cols["price"].append((lv.zone_low + lv.zone_high) / 2)
            cols["width"].append(lv.zone_high - lv.zone_low)
            cols["atr"].append(a)
            cols["grade"].append(lv.grade)
            cols["touches"].append(lv.touches)
            cols["broken"].append(lv.state == "broken")
    return DisplayedLevels(
        t=np.asarray(cols["t"], dtype=np.int64),
        price=np.asarray(cols["price"], dtype=np.float64),
        width=np.asarray(cols["width"], dtype=np.float64),
        atr=np.asarray(cols["atr"], dtype=np.float64),
        grade=np.asarray(cols["grade"], dtype=np.int64),
        touches=np.asarray(cols["touches"], dtype=np.int64),
        broken_now=np.asarray(cols["broken"], dtype=bool),
        eval_bars=np.asarray(eval_bars, dtype=np.int64),
    )


def zones_broken(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    t: int,
    atr_value: float,
    zone_low: np.ndarray,
    zone_high: np.ndarray,
    cfg: StructureConfig = DEFAULT_CONFIG,
) -> np.ndarray:
    """Per zone, whether the level pass at bar `t` (same window, buffer and touch rule) would call it broken.

    The level pass' rule (levels.zone_table), on the one column it needs: a zone is broken when a close went through
    it and no run of touching bars began after the last such close (a run after it can only hold, from the side
    price is now on). Tested equal to zone_table's state.
    """
    ws = max(0, t - cfg.window + 1)
    c, hi, lo = close[ws : t + 1][None, :], high[ws : t + 1][None, :], low[ws : t + 1][None, :]
    buf, tt = cfg.break_buffer_atr * atr_value, cfg.level_touch_atr * atr_value
    z_lo, z_hi = zone_low[:, None], zone_high[:, None]
    side = (c > z_hi + buf).view(np.int8) - (c < z_lo - buf).view(np.int8)
    cross_flat, _, cross_row = RowSegments.of(side).crosses()
    last_cross = np.full(len(zone_low), -1, dtype=np.int64)
    np.maximum.at(last_cross, cross_row, cross_flat - cross_row * side.shape[1])
    touch = (lo <= z_hi + tt) & (hi >= z_lo - tt)
    run_start = touch.copy()
    run_start[:, 1:] &= ~touch[:, :-1]
    last_start = np.where(run_start, np.arange(side.shape[1]), -1).max(axis=1, initial=-1)
    return (last_cross >= 0) & (last_start <= last_cross)


def matched_random_zones(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    shown: DisplayedLevels,
    rng: np.random.Generator,
    cfg: StructureConfig = DEFAULT_CONFIG,
    draws: int = 5,
    tries: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t, centre, atr, width) of `draws` random zones per displayed row, treated as the displayed levels are.

    Each sits at its row's bar, on its row's side of the close, at the ATR distance and width of a row of that side
    drawn at random (so the same bars, the same count per bar and side, the same distances and widths); one the
    level pass would call broken at that bar (closed through and not retested, never displayed) is redrawn, up to
    `tries` times.
    """
    rows = np.tile(np.arange(len(shown.t)), draws)
    t, a = shown.t[rows], shown.atr[rows]
    dist, width_atr = shown.distance_atr(close), shown.width / shown.atr
    support = dist < 0
    pools = np.flatnonzero(support), np.flatnonzero(~support)
    d, w = np.zeros(len(rows)), np.zeros(len(rows))
    pending = np.arange(len(rows))
    for _ in range(tries if len(rows) else 0):
        donor = np.empty(len(pending), dtype=np.int64)
        for is_support, pool in zip((True, False), pools, strict=True):
            mine = support[rows[pending]] == is_support
            donor[mine] = rng.choice(pool, size=int(mine.sum()))
        d[pending], w[pending] = dist[donor], width_atr[donor]
        centre = close[t[pending]] + d[pending] * a[pending]
        half = w[pending] * a[pending] / 2
        broken = np.zeros(len(pending), bool)
        order = np.argsort(t[pending], kind="stable")
        bars, first = np.unique(t[pending][order], return_index=True)
        for bar, at in zip(bars.tolist(), np.split(order, first[1:]), strict=True):
            c = centre[at]
            broken[at] = zones_broken(high, low, close, bar, float(a[at[0]]), c - half[at], c + half[at], cfg)
        pending = pending[broken]
        if len(pending) == 0:
            break
    return t, close[t] + d * a, a, w * a


def ratio_se(
    bars: np.ndarray,
    level: LineOutcomes,
    random_bars: np.ndarray,
    random: LineOutcomes,
    rng: np.random.Generator,
    block: int,
    resamples: int = 200,
) -> float:
    """Standard error of (level reaction rate / random reaction rate) by a block bootstrap over evaluation bars.

    `bars`/`random_bars` give each line's evaluation-bar index (0..n-1); a level stays displayed over many
    consecutive bars, so blocks of `block` bars are resampled whole, with their random lines (NaN: too few blocks).
    """
    n = int(max(bars.max(initial=-1), random_bars.max(initial=-1))) + 1
    n_blocks = -(-n // block) if n else 0
    if n_blocks < 2:
        return float("nan")
    counts = [
        np.bincount(b // block, weights=w, minlength=n_blocks)
        for b, w in (
            (bars, level.touched),
            (bars, level.reacted),
            (random_bars, random.touched),
            (random_bars, random.reacted),
        )
    ]
    pick = rng.integers(0, n_blocks, size=(resamples, n_blocks))
    lt, lr, rt, rr = (c[pick].sum(axis=1) for c in counts)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (lr / lt) / (rr / rt)
    ratio = ratio[np.isfinite(ratio)]
    return float(ratio.std(ddof=1)) if len(ratio) > 1 else float("nan")


@dataclass(frozen=True, slots=True)
class QualityFigures:
    """Reaction rates of displayed levels (all, grade 3) and of random zones treated alike, with display statistics."""

    levels: int
    evaluations: int
    rate_all: float
    rate_grade3: float
    rate_random: float  # random zones at the displayed levels' bars, sides, distances and widths
    rate_random_grade3: float  # random zones at the grade-3 levels' own bars, sides, distances and widths
    se_ratio_grade3: float  # block-bootstrap standard error of ratio_grade3
    touched_grade3: int
    median_touches: float
    broken_when_shown: float
    broken_within_horizon: float
    random_broken_within_horizon: float

    @property
    def ratio_grade3(self) -> float:
        """Grade-3 reaction rate / the rate of random zones matched to the grade-3 levels (the issue's target)."""
        r = self.rate_random_grade3
        return self.rate_grade3 / r if r > 0 else float("nan")

    @property
    def ratio_all(self) -> float:
        """All displayed levels' reaction rate / the rate of random zones matched to them."""
        return self.rate_all / self.rate_random if self.rate_random > 0 else float("nan")


def level_quality(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    every: int = 24,
    horizon: int = 100,
    cfg: StructureConfig = DEFAULT_CONFIG,
    seed: int = 0,
    random_draws: int = 5,
    on_bar: Callable[[int, float, list[Level]], None] | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> QualityFigures:
    """Evaluate every `every` bars (after a full window) the displayed levels against matched random zones.

    `span`: the share of the series' bars the evaluation bars lie in, e.g. (0.5, 1.0) for its later half
    (each still reads its full window before it)."""
    first = min(cfg.window, len(close) // 2)
    eval_bars = np.arange(first, len(close) - horizon - 1, every)
    lo, hi = span[0] * len(close), span[1] * len(close)
    eval_bars = eval_bars[(eval_bars >= lo) & (eval_bars < hi)]
    shown = displayed_levels(high, low, close, volume, eval_bars, cfg, on_bar)
    tol, react, buf = cfg.level_touch_atr, cfg.level_react_atr, cfg.break_buffer_atr
    out = line_outcomes(high, low, close, shown.t, shown.price, shown.atr, horizon, shown.width, tol, react, buf)
    rng = np.random.default_rng(seed)

    def matched(lines: DisplayedLevels) -> tuple[np.ndarray, LineOutcomes]:
        rt, rp, ra, rw = matched_random_zones(high, low, close, lines, rng, cfg, random_draws)
        return rt, line_outcomes(high, low, close, rt, rp, ra, horizon, rw, tol, react, buf)

    g3 = shown.grade == 3
    _, rnd = matched(shown)
    rt3, rnd3 = matched(shown.select(g3))
    index = {b: i for i, b in enumerate(eval_bars.tolist())}
    to_index = np.vectorize(index.__getitem__, otypes=[np.int64])
    g3_out = LineOutcomes(out.touched[g3], out.reacted[g3], out.broken[g3])
    # Blocks as long as the window: a level stays on display for about that long.
    block = max(1, cfg.window // every)
    se = ratio_se(to_index(shown.t[g3]), g3_out, to_index(rt3), rnd3, rng, block) if g3.any() else float("nan")
    n = len(shown.t)
    return QualityFigures(
        levels=n,
        evaluations=len(eval_bars),
        rate_all=out.reaction_rate(),
        rate_grade3=out.reaction_rate(g3),
        rate_random=rnd.reaction_rate(),
        rate_random_grade3=rnd3.reaction_rate(),
        se_ratio_grade3=se,
        touched_grade3=int(out.touched[g3].sum()),
        median_touches=float(np.median(shown.touches)) if n else float("nan"),
        broken_when_shown=float(shown.broken_now.mean()) if n else float("nan"),
        broken_within_horizon=float(out.broken.mean()) if n else float("nan"),
        random_broken_within_horizon=float(rnd.broken.mean()) if len(rnd.broken) else float("nan"),
    )
