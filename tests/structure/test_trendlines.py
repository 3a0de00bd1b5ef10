"""Trendlines: known lines through pivots, respect, touches, span grades, breaks, pressure points."""

from __future__ import annotations

import numpy as np

from tools.structure.pivots import HIGH, LOW, Pivots
from tools.structure.trendlines import detect_trendlines, grade_trendline, pressure_points


def make(rows: list[tuple[int, float, int]]) -> Pivots:
    bar = np.array([r[0] for r in rows])
    return Pivots(bar, bar + 15, np.array([r[1] for r in rows], float), np.array([r[2] for r in rows], np.int8))


LINE = 100 + 0.1 * (np.arange(120) - 10)  # the true support line: 100 at bar 10, +0.1 per bar
SUPPORT_PIVOTS = [(10, 100.0, LOW), (40, 103.0, LOW), (55, 110.0, LOW), (70, 106.0, LOW)]


def test_grade_points() -> None:
    g = grade_trendline(np.array([2, 3, 4, 6, 2, 4]), np.array([10, 10, 10, 10, 80, 80]), long_span=60)
    assert g.tolist() == [1, 2, 3, 3, 2, 4]


def test_three_touch_support_line() -> None:
    close = LINE + 5
    lines = detect_trendlines(make(SUPPORT_PIVOTS), close, as_of=100, atr_value=1.0)
    sup = [ln for ln in lines if ln.kind == "support"]
    best = sup[0]
    assert (best.anchor_bar, best.anchor_price) == (10, 100.0)
    assert np.isclose(best.slope, 0.1)
    assert (best.touches, best.first_touch, best.last_touch, best.span) == (3, 10, 70, 60)
    assert best.grade == 3  # 3 touches -> 2, span 60 -> +1
    assert best.confirmed_at == 85
    assert best.state == "holding" and best.broken_at is None
    assert np.isclose(best.value_at_as_of, 109.0)
    # (10,40), (10,70) and (40,70) are one line: it is reported once.
    assert sum(np.isclose(ln.slope, 0.1) for ln in sup) == 1
    assert not any(ln.kind == "resistance" for ln in lines)


def test_close_through_after_last_touch_breaks_the_line() -> None:
    close = LINE + 5
    close[95] = LINE[95] - 0.5
    best = detect_trendlines(make(SUPPORT_PIVOTS), close, as_of=100, atr_value=1.0)[0]
    assert np.isclose(best.slope, 0.1)
    assert (best.state, best.broken_at) == ("broken", 95)
    before = detect_trendlines(make(SUPPORT_PIVOTS), close, as_of=94, atr_value=1.0)[0]
    assert before.state == "holding"


def test_close_through_between_touches_rejects_the_line() -> None:
    close = LINE + 5
    close[25] = LINE[25] - 2  # through the 10-40 segment
    lines = detect_trendlines(make(SUPPORT_PIVOTS), close, as_of=100, atr_value=1.0)
    assert not any(ln.first_touch == 10 and np.isclose(ln.slope, 0.1) for ln in lines)


def test_resistance_is_the_mirror() -> None:
    mirrored = make([(b, -p, HIGH) for b, p, _ in SUPPORT_PIVOTS])
    best = detect_trendlines(mirrored, -(LINE + 5), as_of=100, atr_value=1.0)[0]
    assert best.kind == "resistance"
    assert np.isclose(best.slope, -0.1) and best.touches == 3 and best.grade == 3


def test_pressure_points_ahead_only() -> None:
    best = detect_trendlines(make(SUPPORT_PIVOTS), LINE + 5, as_of=100, atr_value=1.0)[0]
    pts = pressure_points([best], np.array([105.0, 111.0, 200.0]), np.array([2, 3, 1]), as_of=100, horizon=50)
    assert len(pts) == 1
    assert np.isclose(pts[0].bars_ahead, 20.0) and pts[0].price == 111.0 and pts[0].level_grade == 3
