"""The level pass as arrays (LevelTable) picks exactly what the Level-list helpers pick, on real and random candles.

The display and the fresh breaks are chosen on the arrays and only those rows become Level objects; these tests hold
that choice to nearest_levels / recent_major_breaks over every level, and the nodes-only profile to the full one.
"""

from __future__ import annotations

import numpy as np
import pytest

from tools.structure.analysis import level_pass, shown_rows, window_nodes, window_pivots, window_profile
from tools.structure.config import DEFAULT_CONFIG as CFG
from tools.structure.levels import LevelTable, nearest_levels, recent_major_breaks, with_role
from tools.structure.profile import profile_hvn, volume_profile


def _random_candles(seed: int, n: int = 1300) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    wick = np.abs(rng.normal(0, 0.006, (2, n))) * close
    return close + wick[0], close - wick[1], close, rng.lognormal(3, 1, n)


def _check_bar(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, as_of: int) -> int:
    """Compare the array choices with the list helpers at one bar; returns the number of levels there."""
    ws = max(0, as_of - CFG.window + 1)
    piv = window_pivots(high, low, as_of, ws, CFG)
    atr = float(np.mean(high[ws : as_of + 1] - low[ws : as_of + 1]))
    table = level_pass(high, low, close, volume, as_of, atr, piv, ws, CFG)
    every = table.levels()
    assert table.levels(shown_rows(table, CFG)) == nearest_levels(
        every, float(close[as_of]), CFG.max_levels_per_side, CFG.level_min_touches
    )
    # A price away from the pass' own: roles re-taken like with_role, the display chosen against it.
    away = float(close[as_of]) * 1.004
    picked = table.shown(away, 3, 1)
    assert table.levels(picked, ref=away) == nearest_levels(every, away, 3, 1)
    assert table.levels(picked, ref=away) == [with_role(lv, away) for lv in table.levels(picked)]
    for recent, grade in ((5, 3), (400, 1), (400, 2)):
        assert table.levels(table.major_breaks(as_of, recent, grade)) == recent_major_breaks(
            every, as_of, recent, grade
        )
    prof = window_profile(high, low, close, volume, as_of, ws, CFG)
    assert window_nodes(high, low, close, volume, as_of, ws, CFG) == list(prof.hvn)
    assert level_pass(high, low, close, volume, as_of, atr, piv, ws, CFG, profile=prof).levels() == every
    return len(table)


def test_table_choices_match_the_level_helpers_on_random_candles() -> None:
    sizes = [_check_bar(*_random_candles(seed), as_of) for seed in range(6) for as_of in (150, 700, 1299)]
    assert max(sizes) > 10  # the walks do make many levels


def test_table_choices_match_the_level_helpers_on_real_candles(candles) -> None:
    df = candles("BTC", "1h")
    high, low, close, volume = (df[k].to_numpy(dtype=np.float64) for k in ("high", "low", "close", "volume"))
    for as_of in range(1100, len(close), max(1, (len(close) - 1100) // 25)):
        _check_bar(high, low, close, volume, as_of)


def test_empty_table_and_tiny_profile() -> None:
    empty = LevelTable.empty()
    assert len(empty) == 0 and empty.levels() == []
    assert empty.shown(1.0, 6, 2).tolist() == [] and empty.major_breaks(10, 5).tolist() == []
    one = np.array([1.0, 2.0]), np.array([0.5, 1.5]), np.array([0.8, 1.9]), np.array([3.0, 4.0])
    # Fewer bins than the node window: no nodes, as in the full profile.
    assert profile_hvn(*one, bins=5) == list(volume_profile(*one, bins=5).hvn) == []
    assert profile_hvn(*one, bins=60) == list(volume_profile(*one, bins=60).hvn)


@pytest.mark.parametrize("per_side", [1, 6])
def test_shown_rows_are_in_price_order_with_roles_against_the_price(per_side: int) -> None:
    high, low, close, volume = _random_candles(11)
    ws = 300
    piv = window_pivots(high, low, 1299, ws, CFG)
    table = level_pass(high, low, close, volume, 1299, 1.0, piv, ws, CFG)
    shown = table.levels(table.shown(float(close[-1]), per_side, 1))
    prices = [lv.price for lv in shown]
    assert prices == sorted(prices) and len(shown) <= 2 * per_side
    assert all((lv.role == "support") == (lv.price < close[-1]) for lv in shown)
