"""Worth of displayed levels (SPEC section 4): reaction rate against random lines at the same distances.

A reaction: price touches the line after the evaluation bar and then moves `react_atr` ATRs away
from it before a close beyond it. Displayed levels come from bars <= t only (pivots confirmed by
t); outcomes read bars t+1..t+horizon. Pure and vectorised: one matrix of lines x horizon bars.
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


def random_lines(
    close: np.ndarray, shown: DisplayedLevels, atr_at: dict[int, float], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t, centre, atr, width) of random zones: each displayed zone's ATR distance and width replayed at a
    random evaluation bar, so zone width gives the displayed levels no free edge."""
    t = rng.choice(shown.eval_bars, size=len(shown.t))
    a = np.array([atr_at[int(x)] for x in t])
    return t, close[t] + shown.distance_atr(close) * a, a, shown.width / shown.atr * a


@dataclass(frozen=True, slots=True)
class QualityFigures:
    """Reaction rates of displayed levels (all, grade 3) and of random lines, with display statistics."""

    levels: int
    evaluations: int
    rate_all: float
    rate_grade3: float
    rate_random: float
    rate_random_grade3: float  # random lines replaying the grade-3 levels' own distances and widths
    touched_grade3: int
    median_touches: float
    broken_when_shown: float
    broken_within_horizon: float
    random_broken_within_horizon: float

    @property
    def ratio_grade3(self) -> float:
        """Grade-3 reaction rate / random-line rate."""
        return self.rate_grade3 / self.rate_random if self.rate_random > 0 else float("nan")

    @property
    def ratio_grade3_matched(self) -> float:
        """Grade-3 reaction rate / the rate of random lines at the grade-3 levels' own distances and widths."""
        r = self.rate_random_grade3
        return self.rate_grade3 / r if r > 0 else float("nan")

    @property
    def ratio_all(self) -> float:
        """All displayed levels' reaction rate / random-line rate."""
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
) -> QualityFigures:
    """Evaluate every `every` bars (after a full window) the displayed levels against random lines."""
    first = min(cfg.window, len(close) // 2)
    eval_bars = np.arange(first, len(close) - horizon - 1, every)
    shown = displayed_levels(high, low, close, volume, eval_bars, cfg, on_bar)
    out = line_outcomes(
        high,
        low,
        close,
        shown.t,
        shown.price,
        shown.atr,
        horizon,
        shown.width,
        cfg.level_touch_atr,
        cfg.level_react_atr,
        cfg.break_buffer_atr,
    )
    atr_at = dict(zip(shown.t.tolist(), shown.atr.tolist(), strict=True))
    for t in eval_bars.tolist():
        atr_at.setdefault(t, atr_as_of(high, low, close, t, cfg))
    rng = np.random.default_rng(seed)

    def random_rate(lines: DisplayedLevels, keep: list[np.ndarray] | None) -> float:
        touched = reacted = 0
        for _ in range(random_draws):
            rt, rp, ra, rw = random_lines(close, lines, atr_at, rng)
            tol, react, buf = cfg.level_touch_atr, cfg.level_react_atr, cfg.break_buffer_atr
            ro = line_outcomes(high, low, close, rt, rp, ra, horizon, rw, tol, react, buf)
            touched += int(ro.touched.sum())
            reacted += int(ro.reacted.sum())
            if keep is not None:
                keep.append(ro.broken)
        return reacted / touched if touched else float("nan")

    broken: list[np.ndarray] = []
    rate_random = random_rate(shown, broken)
    # Drawn after the first baseline so its random lines (and the published ratio) stay as they were.
    rate_random_g3 = random_rate(shown.select(shown.grade == 3), None)
    g3 = shown.grade == 3
    nb = np.concatenate(broken) if broken else np.zeros(0, bool)
    return QualityFigures(
        levels=len(shown.t),
        evaluations=len(eval_bars),
        rate_all=out.reaction_rate(),
        rate_grade3=out.reaction_rate(g3),
        rate_random=rate_random,
        rate_random_grade3=rate_random_g3,
        touched_grade3=int(out.touched[g3].sum()),
        median_touches=float(np.median(shown.touches)) if len(shown.t) else float("nan"),
        broken_when_shown=float(shown.broken_now.mean()) if len(shown.t) else float("nan"),
        broken_within_horizon=float(out.broken.mean()) if len(shown.t) else float("nan"),
        random_broken_within_horizon=float(nb.mean()) if len(nb) else float("nan"),
    )
