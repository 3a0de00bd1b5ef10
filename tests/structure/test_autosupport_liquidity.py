"""Auto-support (16 sensitivities) and liquidity pools: known answers and agreement with pivots."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from tools.structure.autosupport import auto_support, multi_sensitivity_pivots
from tools.structure.config import DEFAULT_CONFIG
from tools.structure.liquidity import liquidity_pools
from tools.structure.pivots import find_pivots, pivot_mask


def test_sixteen_sensitivities_match_single_scans() -> None:
    rng = np.random.default_rng(2)
    close = 100 + np.cumsum(rng.normal(size=500))
    high, low = close + rng.uniform(0, 1, 500), close - rng.uniform(0, 1, 500)
    sens = DEFAULT_CONFIG.sensitivities
    assert len(sens) == 16
    bar, price, kind, k = multi_sensitivity_pivots(high, low, sens)
    for s, (left, right) in enumerate(sens):
        got_hi = np.sort(bar[(k == s) & (kind == 1)])
        got_lo = np.sort(bar[(k == s) & (kind == -1)])
        assert got_hi.tolist() == np.flatnonzero(pivot_mask(high, left, right)).tolist()
        assert got_lo.tolist() == np.flatnonzero(pivot_mask(-low, left, right)).tolist()
    assert np.array_equal(price[kind == 1], high[bar[kind == 1]])


def test_a_floor_every_sensitivity_sees_ranks_first() -> None:
    # A saw-tooth falling to the same floor (90) every 40 bars: every window size finds those lows.
    t = np.arange(400)
    close = 90 + 10 * np.abs(((t % 40) - 20) / 20)
    close = close + 0.001 * t  # tiny drift so equal values do not tie
    high, low = close + 0.2, close - 0.2
    zones = auto_support(high, low, close, 399, 0, 1.0, DEFAULT_CONFIG.sensitivities, tol_atr=0.5, top=8)
    best = zones[0]
    assert best.rank == 1 and abs(best.price - 89.95) < 0.6
    assert best.sensitivities == 16 and best.touches >= 8
    assert best.role == "support"
    assert [z.rank for z in zones] == list(range(1, len(zones) + 1))
    assert all(a.score >= b.score for a, b in pairwise(zones))


def test_equal_highs_make_a_pool_that_is_later_swept() -> None:
    n = 200
    high = np.full(n, 95.0)
    high[30], high[80] = 100.0, 100.05  # equal highs, nothing above them in between
    high[150] = 101.0  # the sweep
    low = high - 2
    piv = find_pivots(high, low, 20, 15)
    atr = np.full(n, 1.0)
    before = liquidity_pools(piv, high, low, atr, as_of=120)
    assert before.bar.tolist() == [80] and before.confirmed.tolist() == [95]
    assert before.kind.tolist() == [1] and np.isclose(before.level[0], 100.025)
    assert before.members.tolist() == [2] and before.swept_at.tolist() == [-1]
    after = liquidity_pools(piv, high, low, atr, as_of=199)
    assert after.swept_at.tolist() == [150]
    # Known only at confirmation: one bar earlier there is no pool.
    assert len(liquidity_pools(piv, high, low, atr, as_of=94).bar) == 0


def test_a_higher_high_in_between_breaks_the_pair() -> None:
    n = 200
    high = np.full(n, 95.0)
    high[30], high[55], high[80] = 100.0, 103.0, 100.05
    low = high - 2
    pools = liquidity_pools(find_pivots(high, low, 20, 15), high, low, np.full(n, 1.0), as_of=199)
    assert len(pools.bar) == 0
