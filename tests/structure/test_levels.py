"""Horizontal levels on hand-made series: clustering, touch accumulation, role flip, grades, breaks."""

from __future__ import annotations

import numpy as np

from tools.structure.analysis import analyze_arrays, levels_as_of, window_pivots
from tools.structure.cluster import greedy_cluster_starts
from tools.structure.config import DEFAULT_CONFIG
from tools.structure.levels import detect_levels, grade_level, nearest_levels, recent_major_breaks
from tools.structure.pivots import Pivots
from tools.structure.render import render_human
from tools.structure.report import StructureReport

WICK = 0.3  # high = close + WICK, low = close - WICK


def path(points: list[tuple[int, float]]) -> np.ndarray:
    """Closes linearly interpolated through (bar, price) waypoints."""
    bars, prices = zip(*points, strict=True)
    return np.interp(np.arange(bars[-1] + 1), bars, prices)


def _dips(n: int) -> list[tuple[int, float]]:
    """Waypoints of a path that dips to 100 (lows 99.7) n times, rallying to 110 in between."""
    pts = [(0, 105.0)]
    for i in range(n):
        pts += [(40 + 80 * i, 100.0), (80 + 80 * i, 110.0)]
    return [*pts, (80 * n + 50, 106.0)]


def report(close: np.ndarray, as_of: int | None = None) -> StructureReport:
    """Full analysis of a close path with fixed wicks."""
    bar = len(close) - 1 if as_of is None else as_of
    return analyze_arrays(close + WICK, close - WICK, close, np.ones(len(close)), bar)


def level_near(r: StructureReport, price: float) -> list:
    return [lv for lv in r.levels if abs(lv.price - price) < 1.0]


def test_greedy_clusters_do_not_chain() -> None:
    prices = np.arange(0.0, 10.0, 0.4)  # evenly spaced: single linkage at tol 0.5 would make one cluster
    starts = greedy_cluster_starts(prices, 1.0)
    widths = [prices[e - 1] - prices[s] for s, e in zip(starts, [*starts[1:], len(prices)], strict=True)]
    assert len(starts) == 9
    assert max(widths) <= 1.0


def test_touches_accumulate_from_every_bar_that_reaches_the_level() -> None:
    counts = []
    for n in (2, 3, 4):
        (sup,) = level_near(report(path(_dips(n))), 99.7)
        assert sup.role == "support" and sup.state == "holding"
        assert sup.lows == sup.touches and sup.highs == 0  # every touch came from above
        counts.append((sup.touches, sup.reactions))
    assert counts == [(2, 2), (3, 3), (4, 4)]


def test_a_touch_that_closes_through_is_a_failure_not_a_touch() -> None:
    close = path([(0, 105.0), (40, 100.0), (80, 110.0), (120, 100.0), (160, 110.0), (200, 99.0), (240, 94.0)])
    piv = window_pivots(close + WICK, close - WICK, 240, 0, DEFAULT_CONFIG)
    found, shown = levels_as_of(close + WICK, close - WICK, close, None, 240, 0.6, piv, 0, DEFAULT_CONFIG)
    (sup,) = [lv for lv in found if abs(lv.price - 99.7) < 0.5]
    # Two held dips; the third run closed below 99.7 - buffer: a break, and the respect counts it.
    assert sup.touches == 2 and sup.reactions == 2
    assert sup.state == "broken" and sup.break_direction == "down" and sup.role == "resistance"
    assert sup.respect < (2 + 0.5) / (2 + 1)
    assert sup not in shown  # broken levels are never displayed


def test_role_flip_a_broken_resistance_that_holds_from_above_is_shown_as_support() -> None:
    close = path(
        [
            (0, 105.0),
            (40, 100.0),
            (80, 110.0),
            (120, 100.0),
            (160, 110.0),
            (200, 100.0),
            (240, 118.0),
            (280, 110.8),
            (330, 115.0),
        ]
    )
    # Just after the break (no retest yet): the old resistance is broken, so it is not displayed.
    fresh = report(close, 250)
    assert not level_near(fresh, 110.3)
    assert all(lv.price < fresh.close for lv in fresh.supports())
    # After a retest from above that held: the same level, now support, holding, with all its touches.
    later = report(close)
    (lv,) = level_near(later, 110.3)
    assert (lv.role, lv.state, lv.break_direction) == ("support", "holding", "up")
    assert (lv.highs, lv.lows, lv.touches) == (2, 1, 3)
    assert lv in later.supports()
    assert all(x.price < later.close for x in later.supports())
    assert all(x.price >= later.close for x in later.resistances())


def test_never_a_support_above_the_live_price() -> None:
    close = path([(0, 105.0), (40, 100.0), (80, 110.0), (120, 100.0), (160, 110.0), (200, 100.0), (240, 106.0)])
    piv = window_pivots(close + WICK, close - WICK, 240, 0, DEFAULT_CONFIG)
    found, _ = levels_as_of(close + WICK, close - WICK, close, None, 240, 0.6, piv, 0, DEFAULT_CONFIG)
    # The live price dropped under the 99.7 support since the close: it is resistance against it.
    shown = nearest_levels(found, 99.0, per_side=3)
    assert [lv.role for lv in shown] == ["resistance", "resistance"]
    assert all(lv.price > 99.0 for lv in shown)


def test_grade_ordering_by_touches_respect_volume_node_and_age() -> None:
    touches = np.array([1, 2, 3, 5, 5, 5, 3, 5, 3, 3])
    reactions = np.array([1, 2, 3, 5, 2, 5, 3, 5, 3, 3])
    decided = np.array([1, 2, 3, 5, 5, 5, 3, 6, 3, 3])
    vol = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.0])
    age = np.array([10, 10, 10, 10, 10, 900, 900, 10, 10, 10])
    node = np.array([0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 2.0, 0.3, 2.0])
    grade, strength = grade_level(touches, reactions, decided, vol, age, window=1000, node_atr=node)
    assert grade[:4].tolist() == [1, 2, 3, 3]
    assert grade[4] == 1  # five touches but mostly broken through: not a level that holds, node or not
    assert grade[7] == 2  # one failed touch in six, away from a volume node: short of grade 3
    assert grade[8] == 2  # 3 of 3 at a node, but retested on heavy volume
    assert grade[9] == 2  # 3 of 3 on quiet volume, but far from any volume node
    assert np.all(np.diff(strength[:4]) > 0)  # more touches, more respect: stronger
    assert strength[5] < strength[3] and strength[6] < strength[2]  # a stale level weighs less
    assert strength[8] < strength[2] and strength[9] < strength[2]  # loud retests, no volume node: weaker
    # Without volume nodes (no volumes given) only overwhelming respect (6 of 6 or better) makes grade 3.
    bare, _ = grade_level(touches, reactions, decided, vol, age, window=1000)
    assert bare[:4].tolist() == [1, 2, 2, 2] and bare[7] == 2
    six = np.array([6])
    assert grade_level(six, six, six, np.ones(1), np.array([10]), window=1000)[0].tolist() == [3]
    # Real series: more respected touches never give a lower grade.
    g = [level_near(report(path(_dips(n))), 99.7)[0].grade for n in (2, 3, 6)]
    assert g == sorted(g) and g[0] == 2 and g[-1] == 3


def test_a_level_at_a_high_volume_node_touched_quietly_is_grade3() -> None:
    # Three dips to 100 that each sit there 20 bars (where the range's volume piles up) before rallying to 110.
    pts = [(0, 105.0)]
    for i in range(3):
        pts += [(40 + 100 * i, 100.0), (60 + 100 * i, 100.0), (100 + 100 * i, 110.0)]
    close = path([*pts, (350, 106.0)])
    high, low, as_of = close + WICK, close - WICK, len(close) - 1
    piv = window_pivots(high, low, as_of, 0, DEFAULT_CONFIG)
    at_level = close <= 100.25

    def support(volume: np.ndarray):
        found, _ = levels_as_of(high, low, close, volume, as_of, 1.0, piv, 0, DEFAULT_CONFIG)
        (sup,) = [lv for lv in found if abs(lv.price - 99.7) < 0.5]
        return sup

    quiet = support(np.where(at_level, 1.0, 1.5))  # retests on half the volume of the moves
    assert quiet.node_atr is not None and quiet.node_atr <= 0.5 and quiet.volume_ratio < 1.2
    assert (quiet.touches, quiet.reactions, quiet.grade) == (3, 3, 3)
    loud = support(np.where(at_level, 3.0, 1.0))  # the same prices, the retests on heavy volume
    assert loud.node_atr is not None and loud.node_atr <= 0.5 and loud.volume_ratio >= 1.2
    assert loud.grade == 2
    # The same level with no volumes at all: no profile, so 3 of 3 alone is grade 2.
    found, _ = levels_as_of(high, low, close, None, as_of, 1.0, piv, 0, DEFAULT_CONFIG)
    assert [lv.grade for lv in found if abs(lv.price - 99.7) < 0.5] == [2]
    # People see what the grade rests on (here the report's ATR puts the node 0.6 ATR away: not "at" it).
    r = analyze_arrays(high, low, close, np.where(at_level, 1.0, 1.5), as_of)
    (sup,) = level_near(r, 99.7)
    assert sup.node_atr is not None and sup.node_atr > 0.5

    def line(report: StructureReport) -> str:
        (out,) = [x for x in render_human(report).splitlines() if x.startswith("  99.70  grade")]
        return out

    assert line(r).endswith("ATR, 3 of 3 respected")
    near = sup.model_copy(update={"node_atr": 0.4, "grade": 3})
    assert line(r.model_copy(update={"levels": [near if lv is sup else lv for lv in r.levels]})).endswith(
        "ATR, 3 of 3 respected, at a volume node"
    )


def test_break_of_a_grade3_support_is_a_major_break_until_retested() -> None:
    close = path([*_dips(6)[:-1], (540, 99.0), (550, 97.0), (560, 96.0)])
    r = report(close, 541)
    (b,) = [x for x in r.major_breaks if abs(x.price - 99.7) < 0.5]
    assert b.grade == 3 and b.break_direction == "down" and b.state == "broken" and b.role == "resistance"
    assert b.broken_at is not None and 537 <= b.broken_at <= 541
    piv = window_pivots(close + WICK, close - WICK, 541, 0, DEFAULT_CONFIG)
    found, _ = levels_as_of(close + WICK, close - WICK, close, None, 541, r.atr, piv, 0, DEFAULT_CONFIG)
    assert recent_major_breaks(found, 541, 5)
    assert not recent_major_breaks(found, b.broken_at + 5, 5)
    # Before the break the same level held as support.
    (before,) = level_near(report(close, b.broken_at - 1), 99.7)
    assert (before.state, before.role, before.broken_at) == ("holding", "support", None)


def test_no_pivots_no_levels() -> None:
    empty = Pivots(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8))
    assert detect_levels(empty, np.ones(10), 9, 1.0) == []
