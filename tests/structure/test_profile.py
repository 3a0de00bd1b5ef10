"""Volume profile: exact spreading, buy/sell split, POC, value area, nodes; properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tools.structure.profile import _spread, value_area, volume_profile


def brute_spread(edges: np.ndarray, low: np.ndarray, high: np.ndarray, vol: np.ndarray) -> np.ndarray:
    out = np.zeros(len(edges) - 1)
    for lo, hi, v in zip(low, high, vol, strict=True):
        if hi <= lo:
            out[min(np.searchsorted(edges, lo, "right") - 1, len(out) - 1)] += v
            continue
        overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
        out += v * overlap / (hi - lo)
    return out


def test_single_candle_spreads_evenly_and_splits_by_close_location() -> None:
    p = volume_profile(np.array([10.0]), np.array([0.0]), np.array([7.5]), np.array([100.0]), bins=10)
    assert np.allclose(p.volume, 10.0)
    assert np.allclose(p.buy, 7.5) and np.allclose(p.sell, 2.5)  # close at 75% of the range
    assert p.edges[0] == 0.0 and p.edges[-1] == 10.0


def test_known_poc_and_value_area() -> None:
    # Three candles: a wide one and two stacked on 4-6 make 4-6 the heaviest area.
    high = np.array([10.0, 6.0, 6.0])
    low = np.array([0.0, 4.0, 4.0])
    p = volume_profile(high, low, (high + low) / 2, np.array([10.0, 20.0, 20.0]), bins=10)
    assert np.allclose(p.volume, [1, 1, 1, 1, 21, 21, 1, 1, 1, 1])
    assert p.poc_index == 4 and p.poc == 4.5  # first of the tied maxima
    # 70% of 50 = 35: POC bin 21 + upper neighbour 21 = 42 >= 35 -> value area 4..6.
    assert (p.val, p.vah) == (4.0, 6.0)
    assert p.value_area_volume == 42.0


def test_value_area_grows_towards_the_larger_side() -> None:
    vol = np.array([1.0, 5, 2, 10, 3, 1, 1])
    lo, hi, acc = value_area(vol, 3, 0.70)  # total 23 -> need 16.1
    # 10 -> +3 (right) = 13 -> 2 vs 1: take 2 (left) = 15 -> 5 vs 1: take 5 = 20
    assert (lo, hi, acc) == (1, 4, 20.0)


def test_flat_candles_go_to_their_bin() -> None:
    edges = np.linspace(0, 10, 11)
    out = _spread(edges, np.array([3.3, 10.0]), np.array([3.3, 10.0]), np.array([5.0, 2.0]))
    assert out[3] == 5.0 and out[9] == 2.0 and out.sum() == 7.0


def test_nodes_on_a_bimodal_profile() -> None:
    rng = np.random.default_rng(5)
    centers = np.concatenate((rng.normal(100, 1, 400), rng.normal(110, 1, 400)))
    high, low = centers + 0.3, centers - 0.3
    p = volume_profile(high, low, centers, np.ones(800), bins=250)
    assert any(abs(h - 100) < 1.5 for h in p.hvn) and any(abs(h - 110) < 1.5 for h in p.hvn)
    assert any(102 < x < 108 for x in p.lvn)  # the gap between the two humps


candles = st.lists(
    st.tuples(st.floats(1, 1000), st.floats(0, 50), st.floats(0, 1), st.floats(0, 1e4)),
    min_size=1,
    max_size=120,
)


@settings(max_examples=80, deadline=None)
@given(candles, st.integers(5, 250))
def test_profile_properties(rows: list[tuple[float, float, float, float]], bins: int) -> None:
    low = np.array([r[0] for r in rows])
    high = low + np.array([r[1] for r in rows])
    close = low + (high - low) * np.array([r[2] for r in rows])
    vol = np.array([r[3] for r in rows])
    p = volume_profile(high, low, close, vol, bins=bins)
    total = vol.sum()
    assert len(p.volume) == bins and len(p.edges) == bins + 1
    assert np.isclose(p.volume.sum(), total, rtol=1e-9, atol=1e-6)
    assert np.allclose(p.buy + p.sell, p.volume, atol=1e-6)
    assert np.all(p.volume >= -1e-6)
    assert p.volume[p.poc_index] == p.volume.max()
    assert p.value_area_volume >= 0.70 * total - 1e-6 * max(total, 1)
    assert p.val <= p.poc <= p.vah
    assert np.allclose(p.volume, brute_spread(p.edges, low, high, vol), atol=1e-6 * max(total, 1))
