"""Horizontal support/resistance levels: pivots cluster into a level, bars decide what it is worth.

A level's price comes from clustered swing pivots; its touches, respect, role and state come from
every bar up to `as_of` (wicks and closes): a touch is a run of bars reaching the level's zone
without a close through it; a touch is respected when price then moves `react_atr` ATRs away
before a close beyond it. The role follows price (below the reference price: support), so a
broken resistance that holds from above is shown as support, never a support above price.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tools.structure.cluster import greedy_cluster_starts
from tools.structure.pivots import Pivots
from tools.structure.report import BreakDirection, Role, State
from tools.structure.segments import RowSegments

NEVER = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class Level:
    """One horizontal level; bars are frame indices, `confirmed_at` is when its last pivot was known.

    `highs`/`lows` count touches from below (tests as resistance) and from above (tests as support).
    """

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
    role: Role  # "support" below the reference price, "resistance" at or above it
    state: State  # "broken": closed through since its last touch from the side price is now on
    broken_at: int | None  # the last close through the level, if any
    break_direction: BreakDirection | None  # "up" (closed above) or "down" (closed below)
    reactions: int = 0
    respect: float = 0.0  # respected touches / decided touches (failed ones included)
    volume_ratio: float = 1.0  # mean volume of touch bars / mean volume of the bars scanned
    strength: float = 0.0  # the score the grade is cut from; ranks levels of one side
    node_atr: float | None = None  # distance of the zone middle to the nearest profile HVN, in ATRs (None: unknown)


@dataclass(frozen=True, slots=True)
class LevelTable:
    """Every level of one level pass as parallel arrays sorted by price; Level objects are built only for the rows
    asked for (the display and the fresh breaks need a dozen of the ~25, and building one costs more than its row)."""

    price: np.ndarray
    zone_low: np.ndarray
    zone_high: np.ndarray
    touches: np.ndarray
    highs: np.ndarray
    lows: np.ndarray
    first_touch: np.ndarray
    last_touch: np.ndarray
    confirmed: np.ndarray
    grade: np.ndarray
    broken: np.ndarray  # bool
    cross_at: np.ndarray  # frame index of the last close through, -1 for none
    last_dir: np.ndarray  # +1 up, -1 down, 0 none
    reactions: np.ndarray
    respect: np.ndarray
    volume_ratio: np.ndarray
    strength: np.ndarray
    node_atr: np.ndarray | None
    ref: float  # the price roles are taken against

    @classmethod
    def empty(cls) -> LevelTable:
        """A pass without pivots: no levels."""
        f, i = np.zeros(0), np.zeros(0, dtype=np.int64)
        return cls(f, f, f, i, i, i, i, i, i, i, np.zeros(0, bool), i, i, i, f, f, f, None, 0.0)

    def __len__(self) -> int:
        return len(self.price)

    def levels(self, rows: np.ndarray | None = None, ref: float | None = None) -> list[Level]:
        """Level objects of `rows` (default: all) in that order, roles taken against `ref` (default: the pass')."""
        idx = np.arange(len(self.price)) if rows is None else np.asarray(rows, dtype=np.int64)
        at = float(self.ref if ref is None else ref)
        na = self.node_atr
        nodes = [None] * len(idx) if na is None else [x if np.isfinite(x) else None for x in na[idx].tolist()]
        # Plain Python values once per column: numpy scalars converted one by one cost more than the level pass.
        cols = (
            self.price, self.zone_low, self.zone_high, self.touches, self.highs, self.lows, self.first_touch,
            self.last_touch, self.confirmed, self.grade, self.broken, self.cross_at, self.last_dir, self.reactions,
            self.respect, self.volume_ratio, self.strength,
        )  # fmt: skip
        rows_out = zip(*(col[idx].tolist() for col in cols), nodes, strict=True)
        return [
            Level(
                price=m,
                zone_low=zl,
                zone_high=zh,
                touches=nt,
                highs=nh,
                lows=nl,
                first_touch=ft,
                last_touch=lt,
                confirmed_at=cf,
                grade=g,
                role="support" if m < at else "resistance",
                state="broken" if br else "holding",
                broken_at=ca if ca >= 0 else None,
                break_direction=("up" if ld > 0 else "down") if ca >= 0 else None,
                reactions=nr,
                respect=rs,
                volume_ratio=vr,
                strength=st,
                node_atr=nd,
            )
            for m, zl, zh, nt, nh, nl, ft, lt, cf, g, br, ca, ld, nr, rs, vr, st, nd in rows_out
        ]

    def shown(self, close: float, per_side: int, min_touches: int = 1) -> np.ndarray:
        """Rows `nearest_levels` would display against `close`, in price order (the same choice, on the arrays)."""
        live = ~self.broken & (self.touches >= min_touches)
        picked = []
        for side in (live & (self.price < close), live & ~(self.price < close)):
            rows = np.flatnonzero(side)
            picked.append(rows[np.argsort(np.abs(self.price[rows] - close), kind="stable")[:per_side]])
        out = np.concatenate(picked)
        return out[np.argsort(self.price[out], kind="stable")]

    def major_breaks(self, as_of: int, recent_bars: int, min_grade: int = 3) -> np.ndarray:
        """Rows `recent_major_breaks` would report: grade >= `min_grade`, broken within `recent_bars` bars."""
        hit = (self.grade >= min_grade) & self.broken & (self.cross_at >= 0) & (as_of - self.cross_at < recent_bars)
        return np.flatnonzero(hit)


def respect_bound(reactions: np.ndarray, decided: np.ndarray, z: float = 1.0) -> np.ndarray:
    """Lower Wilson bound of the respected share: 3 of 3 touches proves less than 14 of 15 (0 when none)."""
    n = np.maximum(decided, 1).astype(np.float64)
    ph = reactions / n
    lb = (ph + z * z / (2 * n) - z * np.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    return np.where(decided > 0, lb, 0.0)


# Grade 3 was cut where a first, biased baseline (random lines at other bars) showed an edge: a level at a
# high-volume node of the visible profile touched on quiet volume, or overwhelming respect (6 of 6 touches or
# better), which is what a level that holds looks like where levels do hold. Against random zones treated as the
# levels are (tests/bench/bench_levels.py: same bars, sides, distances, widths, none broken) grade 3 reacts
# 0.98-1.22x as often on BTC/ETH/SOL 1h and 4h, and no rule tried does better in both halves of the series
# (tests/bench/bench_level_features.py), nor does another family of lines (tests/bench/bench_level_families.py); the
# grades stay, as a description of the level, not a measured edge.
NODE_ATR = 0.5  # a level whose zone middle is this close to a profile HVN sits at a volume node
QUIET_VOLUME = 1.2  # touch bars' mean volume under this multiple of the range's mean: quiet retests
PROVEN_BOUND = 0.85  # respect bound of 6 respected touches out of 6 (5 of 5 is 0.83)


def grade_level(
    touches: np.ndarray,
    reactions: np.ndarray,
    decided: np.ndarray,
    volume_ratio: np.ndarray,
    age_bars: np.ndarray,
    window: int,
    node_atr: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(grade 1-3, strength) from touches, respect, volume at the level, volume-node distance and age.

    Respect is the lower bound of the respected share of decided touches (a failed touch counts
    against it). Grade 2: 2+ touches and a bound of 0.4 (2 of 2 is 0.5). Grade 3: 3+ touches and
    either the zone middle within NODE_ATR ATRs of a high-volume node (`node_atr`; unknown without
    volume) with quiet touches (volume ratio < QUIET_VOLUME) and a bound of 0.3 (2 of 3; not mostly
    broken through), or a bound of PROVEN_BOUND. Strength, which ranks levels: up to 4 points for touches,
    2 for the bound, 1 for quiet touches, 1 at a volume node, minus 1 when stale.
    """
    lb = respect_bound(reactions, decided)
    node = np.zeros(len(touches), bool) if node_atr is None else node_atr <= NODE_ATR
    quiet = volume_ratio < QUIET_VOLUME
    t = np.minimum(touches, 4).astype(np.float64)
    strength = t + 2.0 * lb + quiet + node - (age_bars > window / 2)
    g3 = (touches >= 3) & (((lb >= 0.3) & node & quiet) | (lb >= PROVEN_BOUND))
    g2 = (touches >= 2) & (lb >= 0.4)
    grade = np.where(g3, 3, np.where(g2, 2, 1)).astype(np.int64)
    return grade, strength


def row_next(flat: np.ndarray, query: np.ndarray, n_bar: int) -> np.ndarray:
    """Column of the first true cell at or after each flat `query` in its own row, else NEVER.

    `flat` holds the sorted flat indices (row * n_bar + column) of a mask's true cells: one binary
    search per query instead of a running minimum over the whole levels x bars matrix.
    """
    k = np.searchsorted(flat, query)
    row_end = (query // n_bar + 1) * n_bar
    hit = np.minimum(k, len(flat) - 1)
    ok = (k < len(flat)) & (flat[hit] < row_end) if len(flat) else np.zeros(len(query), bool)
    return np.where(ok, flat[hit] % n_bar if len(flat) else 0, NEVER)


def _last_per_row(rows: np.ndarray, values: np.ndarray, n_rows: int, empty: int) -> np.ndarray:
    """values at the last cell of each row (`rows`: the sorted row of each cell), `empty` for rows without one."""
    out = np.full(n_rows, empty, dtype=np.int64)
    if len(rows):
        last = np.flatnonzero(np.append(rows[1:] != rows[:-1], True))
        out[rows[last]] = values[last]
    return out


def level_table(
    pivots: Pivots,
    close: np.ndarray,
    as_of: int,
    atr_value: float,
    tol_atr: float = 0.5,
    break_buffer_atr: float = 0.1,
    *,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    start: int | None = None,
    touch_tol_atr: float = 0.25,
    react_atr: float = 1.0,
    window: int = 1000,
    ref_price: float | None = None,
    nodes: np.ndarray | None = None,
) -> LevelTable:
    """Cluster pivots (already filtered to those confirmed <= as_of) into levels, sorted by price.

    Bars `start`..`as_of` are scanned (default: from the first pivot); without `high`/`low`
    the closes stand in for the wicks. The role is taken against `ref_price` (default: the
    close at `as_of`). `nodes`: high-volume node prices of the visible profile (grade 3 needs one).
    """
    if len(pivots) == 0:
        return LevelTable.empty()
    order = np.argsort(pivots.price, kind="stable")
    price, bar = pivots.price[order], pivots.bar[order]
    conf = pivots.confirmed[order]
    starts = greedy_cluster_starts(price, tol_atr * atr_value)
    counts = np.diff(np.append(starts, len(price)))
    mean = np.add.reduceat(price, starts) / counts
    zone_low, zone_high = price[starts], price[starts + counts - 1]
    first_piv = np.minimum.reduceat(bar, starts)
    last_piv = np.maximum.reduceat(bar, starts)
    confirmed = np.maximum.reduceat(conf, starts)
    s = int(max(0, first_piv.min() if start is None else start))
    return zone_table(
        mean, zone_low, zone_high, first_piv, last_piv, confirmed, close, as_of, atr_value, break_buffer_atr,
        high=high, low=low, volume=volume, start=s, touch_tol_atr=touch_tol_atr, react_atr=react_atr,
        window=window, ref_price=ref_price, nodes=nodes,
    )  # fmt: skip


def zone_table(
    mean: np.ndarray,
    zone_low: np.ndarray,
    zone_high: np.ndarray,
    first_piv: np.ndarray,
    last_piv: np.ndarray,
    confirmed: np.ndarray,
    close: np.ndarray,
    as_of: int,
    atr_value: float,
    break_buffer_atr: float = 0.1,
    *,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    start: int = 0,
    touch_tol_atr: float = 0.25,
    react_atr: float = 1.0,
    window: int = 1000,
    ref_price: float | None = None,
    nodes: np.ndarray | None = None,
) -> LevelTable:
    """The level pass of given zones (sorted by price): bars `start`..`as_of` decide their touches, respect, state
    and grade; `first_piv`/`last_piv` stand in for the first/last touch of a zone never touched, `confirmed` is
    carried. level_table feeds it clustered pivots; the quality check holds its random zones' state to it."""
    s = start
    sl = slice(s, as_of + 1)
    c = close[sl][None, :]
    hi = (close if high is None else high)[sl][None, :]
    lo = (close if low is None else low)[sl][None, :]
    n_lv, n_bar = len(mean), c.shape[1]
    # The zone spans the clustered pivots: closes beyond its far edge break it, moves off its near edge react.
    z_lo, z_hi = zone_low[:, None], zone_high[:, None]
    tt, buf, away = touch_tol_atr * atr_value, break_buffer_atr * atr_value, react_atr * atr_value

    # The two comparisons exclude each other (the far edges plus a buffer), so their difference is the side.
    side2d = (c > z_hi + buf).view(np.int8) - (c < z_lo - buf).view(np.int8)
    side = side2d.ravel()
    # Price changes side of a level only a few times: its crosses and sides are read from the runs of equal cells.
    segs = RowSegments.of(side2d)
    cross_flat, cross_dir, cross_row = segs.crosses()  # a close through the level, to the other side
    last_cross = _last_per_row(cross_row, cross_flat - cross_row * n_bar, n_lv, -1)
    last_dir = _last_per_row(cross_row, cross_dir, n_lv, 0)
    now_side = segs.last_nonzero(n_lv)  # the side of each row's last close off the zone (0: none)

    touch = np.flatnonzero(((lo <= z_hi + tt) & (hi >= z_lo - tt)).ravel())
    t_rows = touch // n_bar
    new_run = np.ones(len(touch), bool)
    new_run[1:] = (np.diff(touch) != 1) | (t_rows[1:] != t_rows[:-1])
    run_start = touch[new_run]
    run_end = touch[np.append(new_run[1:], True)] if len(touch) else touch
    run_row, run_col = run_start // n_bar, run_start % n_bar
    # One flag per run of touching bars: a run holding a close through is a break, not a touch.
    ri = np.searchsorted(run_start, cross_flat, side="right") - 1
    in_run = (ri >= 0) & (cross_flat <= run_end[np.maximum(ri, 0)]) if len(run_start) else ri >= 0
    broke = np.zeros(len(run_start), bool)
    broke[ri[in_run]] = True
    # The side price came from: the last close off the zone before the run's first bar.
    prev = segs.value_before(run_start).astype(np.int8)
    # A run on the window's first bar has no bar before it: its own close tells the side.
    prev = np.where(run_col == 0, side[run_start], prev).astype(np.int8)
    held = ~broke & (prev != 0)
    from_above, from_below = held & (prev > 0), held & (prev < 0)
    failed_run = broke & (prev != 0)

    # Respect: after the touch bar, a move `away` ATRs off the zone before a close beyond it.
    q = run_start + 1
    up_away = row_next(np.flatnonzero((hi >= z_hi + away).ravel()), q, n_bar)
    dn_away = row_next(np.flatnonzero((lo <= z_lo - away).ravel()), q, n_bar)
    up_brk = segs.next_at(q, run_row, 1)
    dn_brk = segs.next_at(q, run_row, -1)
    # A run at the very last column has no bar after it: nothing is decided yet.
    q_ok = run_col + 1 < n_bar
    reacted = q_ok & ((from_above & (up_away < dn_brk)) | (from_below & (dn_away < up_brk)))
    decided = q_ok & (
        (from_above & (np.minimum(up_away, dn_brk) < NEVER)) | (from_below & (np.minimum(dn_away, up_brk) < NEVER))
    )

    def per_row(mask: np.ndarray) -> np.ndarray:
        return np.bincount(run_row[mask], minlength=n_lv)

    touches, reactions = per_row(held), per_row(reacted)
    highs, lows = per_row(from_below), per_row(from_above)
    failed = per_row(failed_run)
    n_decided = per_row(decided) + failed
    respect = reactions / np.maximum(n_decided, 1)
    last_held = np.full(n_lv, -1, dtype=np.int64)
    first_held = np.full(n_lv, n_bar, dtype=np.int64)
    np.maximum.at(last_held, run_row[held], run_col[held])
    np.minimum.at(first_held, run_row[held], run_col[held])
    if volume is None:
        vol_ratio = np.ones(n_lv)
    else:
        v = volume[sl]
        vmean = float(v.sum()) / len(v) or 1.0  # v.mean() to the bit (the same pairwise sum, one division)
        n_touch = np.bincount(t_rows, minlength=n_lv)
        v_touch = np.bincount(t_rows, weights=v[touch % n_bar], minlength=n_lv)
        vol_ratio = np.where(n_touch > 0, v_touch / np.maximum(n_touch, 1) / vmean, 0.0)
    last_touch = np.where(last_held >= 0, last_held + s, last_piv)
    first_touch = np.where(first_held < n_bar, first_held + s, first_piv)

    # Proven in its current role: a touch from the side price is now on after the last close through.
    proof = held & (prev == now_side[run_row]) & (run_col > last_cross[run_row])
    retested = (per_row(proof) > 0) | (last_cross < 0)
    broken = ~retested
    # A broken level keeps the grade it had before the run that broke it ("a grade 3 level broke").
    graded_n = n_decided - (broken & (failed > 0))
    node_atr = None
    if nodes is not None:
        mid, nd = (zone_low + zone_high) / 2, np.asarray(nodes, dtype=np.float64)
        gap = np.abs(mid[:, None] - nd[None, :]).min(axis=1) if len(nd) else np.full(n_lv, np.inf)
        node_atr = gap / atr_value
    grades, strength = grade_level(touches, reactions, graded_n, vol_ratio, as_of - last_touch, window, node_atr)
    ref = float(close[as_of]) if ref_price is None else float(ref_price)
    cross_at = np.where(last_cross >= 0, last_cross + s, -1)
    return LevelTable(
        mean,
        zone_low,
        zone_high,
        touches,
        highs,
        lows,
        first_touch,
        last_touch,
        confirmed,
        grades,
        broken,
        cross_at,
        last_dir,
        reactions,
        respect,
        vol_ratio,
        strength,
        node_atr,
        ref,
    )


def detect_levels(
    pivots: Pivots,
    close: np.ndarray,
    as_of: int,
    atr_value: float,
    tol_atr: float = 0.5,
    break_buffer_atr: float = 0.1,
    **kw: Any,
) -> list[Level]:
    """Every level of `level_table` (same arguments) as Level objects, sorted by price."""
    return level_table(pivots, close, as_of, atr_value, tol_atr, break_buffer_atr, **kw).levels()


def with_role(level: Level, price: float) -> Level:
    """The level with its role taken against `price` (the live price may sit elsewhere than the close)."""
    role: Role = "support" if level.price < price else "resistance"
    return level if role == level.role else replace(level, role=role)


def nearest_levels(levels: list[Level], close: float, per_side: int, min_touches: int = 1) -> list[Level]:
    """The `per_side` nearest holding levels with `min_touches`+ touches on each side of `close`, by price.

    Broken and thin levels never reach the display, so the nearest shown on a side is the nearest
    level that has proven itself; the grade tells how strongly.
    """
    live = [with_role(lv, close) for lv in levels if lv.state == "holding" and lv.touches >= min_touches]
    out: list[Level] = []
    for role in ("support", "resistance"):
        side = [lv for lv in live if lv.role == role]
        side.sort(key=lambda lv: abs(lv.price - close))
        out += side[:per_side]
    return sorted(out, key=lambda lv: lv.price)


def recent_major_breaks(levels: list[Level], as_of: int, recent_bars: int, min_grade: int = 3) -> list[Level]:
    """Levels of grade >= `min_grade` closed through within the last `recent_bars` bars and not retested."""
    return [
        lv
        for lv in levels
        if lv.grade >= min_grade
        and lv.state == "broken"
        and lv.broken_at is not None
        and as_of - lv.broken_at < recent_bars
    ]
