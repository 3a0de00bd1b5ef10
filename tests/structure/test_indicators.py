"""The shared indicators: the last-value ATR the structure pass uses equals the full Wilder series' last value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tools.indicators import atr, atr_last


def _walk(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    spread = np.abs(rng.normal(0, 0.6, n)) + 0.01
    return close + spread, close - spread, close


@pytest.mark.parametrize("n", [14, 15, 40, 1_200, 5_000])
def test_atr_last_is_the_last_value_of_the_wilder_series(n: int) -> None:
    high, low, close = _walk(n, seed=n)
    assert atr_last(high, low, close, 14) == pytest.approx(float(atr(high, low, close, 14)[-1]), rel=1e-12)


def test_atr_last_weights_the_latest_bars_most() -> None:
    high, low, close = _walk(300, seed=1)
    base = atr_last(high, low, close)
    high[-1] += 50  # one wide last bar moves it by about a 14th of the extra range
    assert atr_last(high, low, close) - base == pytest.approx(50 / 14, rel=0.05)


def test_atr_last_is_nan_under_one_period() -> None:
    high, low, close = _walk(13, seed=2)
    assert math.isnan(atr_last(high, low, close, 14))
