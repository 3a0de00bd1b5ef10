"""Pivots: known answers on hand-made series, confirmation stamping and the as-of filter."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.structure.pivots import HIGH, LOW, Pivots, find_pivots, market_trend, pivot_labels, pivot_mask, rolling_max


def brute_mask(x: np.ndarray, left: int, right: int) -> np.ndarray:
    out = np.zeros(len(x), dtype=bool)
    for i in range(left, len(x) - right):
        out[i] = x[i] > x[i - left : i].max() and x[i] >= x[i + 1 : i + right + 1].max()
    return out


def test_known_pivots_left2_right2() -> None:
    high = np.array([1.0, 2, 5, 3, 2, 4, 1, 1, 6, 6, 2, 1])
    low = high - 0.5
    p = find_pivots(high, low, left=2, right=2)
    highs = p.highs()
    # 5 at bar 2; 4 at bar 5 (beats 3, 2 left and 1, 1 right); flat top 6,6 -> only its first bar 8.
    assert highs.bar.tolist() == [2, 5, 8]
    assert highs.confirmed.tolist() == [4, 7, 10]
    assert highs.price.tolist() == [5.0, 4.0, 6.0]
    lows = p.lows()
    # Lows: 1.5 at bar 4 (below 4.5, 2.5 before; 3.5, 0.5 after -> no), 0.5 at bar 6 (ties 0.5 at 7).
    assert lows.bar.tolist() == [6]
    assert lows.confirmed.tolist() == [8]
    assert set(p.kind.tolist()) <= {HIGH, LOW}


def test_first_bars_need_a_full_left_window() -> None:
    high = np.array([9.0, 1, 2, 3, 4, 2, 1, 0])
    p = find_pivots(high, high - 1, left=3, right=2)
    # Bar 0 is the highest but has no left window; bar 4 beats the three bars before it.
    assert p.highs().bar.tolist() == [4]


def test_default_windows_confirm_15_bars_later() -> None:
    rng = np.random.default_rng(3)
    close = 100 + np.cumsum(rng.normal(size=600))
    high, low = close + 1, close - 1
    p = find_pivots(high, low)
    assert len(p) > 5
    assert np.all(p.confirmed - p.bar == 15)
    assert np.all(p.bar >= 20)
    assert np.all(p.confirmed <= 599)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 20), min_size=5, max_size=80),
    st.integers(1, 6),
    st.integers(1, 6),
)
def test_mask_matches_brute_force(values: list[int], left: int, right: int) -> None:
    x = np.array(values, dtype=float)  # small integers -> many ties, the hard case
    assert np.array_equal(pivot_mask(x, left, right), brute_mask(x, left, right))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=60), st.integers(1, 70))
def test_rolling_max(values: list[float], width: int) -> None:
    x = np.array(values)
    got = rolling_max(x, width)
    want = [x[j : j + width].max() for j in range(len(x) - width + 1)]
    assert got.tolist() == want


def test_pivots_of_a_prefix_are_the_confirmed_ones_of_the_whole() -> None:
    rng = np.random.default_rng(11)
    close = 50 + np.cumsum(rng.normal(size=400))
    high, low = close + rng.uniform(0, 1, 400), close - rng.uniform(0, 1, 400)
    full = find_pivots(high, low)
    for t in range(30, 400, 7):
        prefix = find_pivots(high, low, as_of=t)
        settled = full.as_of(t)
        assert prefix.bar.tolist() == settled.bar.tolist()
        assert prefix.price.tolist() == settled.price.tolist()
        assert np.all(prefix.confirmed <= t)


def test_labels_and_trend() -> None:
    p = Pivots(
        bar=np.array([2, 5, 8, 11]),
        confirmed=np.array([4, 7, 10, 13]),
        price=np.array([10.0, 5.0, 12.0, 6.0]),
        kind=np.array([HIGH, LOW, HIGH, LOW], dtype=np.int8),
    )
    lab, lvl = pivot_labels(14, p)
    assert lab.tolist() == [0, 0, 1, 0, 0, -1, 0, 0, 1, 0, 0, -1, 0, 0]
    assert lvl[8] == 12.0 and np.isnan(lvl[0])
    assert market_trend(p) == 1  # higher high 12 > 10 and higher low 6 > 5
    assert market_trend(p.as_of(12)) == 0  # the second low is not confirmed yet
    mirrored = Pivots(p.bar, p.confirmed, -p.price, -p.kind)
    assert market_trend(mirrored) == -1
