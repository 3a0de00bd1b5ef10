"""Horizontal levels: clustering, touches, grade, role, holding/broken state, grade 3 breaks."""

from __future__ import annotations

import numpy as np

from tools.structure.cluster import greedy_cluster_starts
from tools.structure.levels import detect_levels, grade_level, nearest_levels, recent_major_breaks
from tools.structure.pivots import HIGH, LOW, Pivots


def pivots(rows: list[tuple[int, float, int]], right: int = 15) -> Pivots:
    bar = np.array([r[0] for r in rows])
    return Pivots(bar, bar + right, np.array([r[1] for r in rows]), np.array([r[2] for r in rows], dtype=np.int8))


def test_greedy_clusters_do_not_chain() -> None:
    prices = np.arange(0.0, 10.0, 0.4)  # evenly spaced: single linkage at tol 0.5 would make one cluster
    starts = greedy_cluster_starts(prices, 1.0)
    widths = [prices[e - 1] - prices[s] for s, e in zip(starts, [*starts[1:], len(prices)], strict=True)]
    assert len(starts) == 9
    assert max(widths) <= 1.0


def test_grades() -> None:
    g = grade_level(np.array([1, 2, 2, 3, 5, 1]), np.array([1, 2, 1, 3, 5, 1]), np.array([0, 0, 1, 0, 0, 0]))
    # 1 touch = 1; 2 touches = 2; 2 touches with a role flip = 3; 3+ touches = 3 (capped).
    assert g.tolist() == [1, 2, 3, 3, 3, 1]


def test_known_levels_roles_and_touches() -> None:
    piv = pivots(
        [
            (10, 100.0, LOW),
            (30, 110.0, HIGH),
            (50, 100.3, LOW),
            (70, 109.8, HIGH),
            (90, 99.9, LOW),
            (110, 120.0, HIGH),
        ]
    )
    close = np.full(140, 105.0)
    levels = detect_levels(piv, close, as_of=139, atr_value=1.0, tol_atr=0.5)
    assert [round(lv.price, 4) for lv in levels] == [round((100 + 100.3 + 99.9) / 3, 4), 109.9, 120.0]
    low_lv, mid, top = levels
    assert (low_lv.touches, low_lv.lows, low_lv.highs, low_lv.grade) == (3, 3, 0, 3)
    assert (low_lv.first_touch, low_lv.last_touch, low_lv.confirmed_at) == (10, 90, 105)
    assert (low_lv.zone_low, low_lv.zone_high) == (99.9, 100.3)
    assert low_lv.role == "support" and mid.role == "resistance" and top.role == "resistance"
    assert (mid.touches, mid.grade) == (2, 2)
    assert all(lv.state == "holding" for lv in levels)
    near = nearest_levels(levels, 105.0, per_side=1)
    assert [lv.price for lv in near] == [low_lv.price, mid.price]


def test_break_of_a_grade3_support_is_detected_after_the_last_touch_only() -> None:
    piv = pivots([(10, 100.0, LOW), (40, 100.2, LOW), (70, 99.8, HIGH), (90, 100.1, LOW)])
    close = np.full(140, 103.0)
    close[60] = 98.0  # before the last touch: does not count
    close[130] = 99.95  # within the 0.1 ATR buffer: no break
    close[135:] = 99.0  # a real close through
    levels = detect_levels(piv, close, as_of=136, atr_value=1.0, break_buffer_atr=0.1)
    (lv,) = levels
    assert lv.grade == 3
    assert lv.state == "broken" and lv.broken_at == 135 and lv.break_direction == "down"
    assert lv.role == "resistance"  # price is now below it
    assert recent_major_breaks(levels, as_of=136, recent_bars=5) == [lv]
    assert recent_major_breaks(levels, as_of=139, recent_bars=5) == [lv]
    assert recent_major_breaks(levels, as_of=140, recent_bars=5) == []
    # One bar earlier nothing had broken.
    (before,) = detect_levels(piv, close, as_of=134, atr_value=1.0)
    assert before.state == "holding" and before.broken_at is None and before.role == "support"


def test_resistance_breaks_upwards() -> None:
    piv = pivots([(10, 50.0, HIGH), (30, 50.1, HIGH)])
    close = np.full(80, 48.0)
    close[70] = 50.5
    (lv,) = detect_levels(piv, close, as_of=79, atr_value=1.0)
    assert (lv.state, lv.broken_at, lv.break_direction) == ("broken", 70, "up")
    assert lv.role == "resistance"  # the close is back under it


def test_no_pivots_no_levels() -> None:
    empty = pivots([])
    assert detect_levels(empty, np.ones(10), 9, 1.0) == []
