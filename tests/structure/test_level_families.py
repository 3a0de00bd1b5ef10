"""The level families screened by tests/bench/bench_level_families.py read no bar after the evaluation bar."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.bench.bench_level_families import CONTROL, Collector, Series, near_any, nearest_per_side
from tools.structure.config import DEFAULT_CONFIG
from tools.structure.quality import displayed_levels


def _frame(seed: int, n: int = 2600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    wick = np.abs(rng.normal(0, 0.004, (2, n))) * close
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="time")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + wick[0],
            "low": np.minimum(open_, close) - wick[1],
            "close": close,
            "volume": rng.uniform(50, 150, n),
        },
        index=idx,
    )


def _collect(df: pd.DataFrame, bars: np.ndarray) -> Collector:
    s = Series("TEST_1h", df)
    col = Collector(s, 3)
    displayed_levels(s.h, s.lo, s.c, s.v, bars, DEFAULT_CONFIG, col)
    return col


def test_family_lines_ignore_every_bar_after_the_evaluation_bar() -> None:
    t = 2000
    df = _frame(0)
    changed = df.copy()
    other = _frame(1)
    # Every bar after t replaced (a different path from t's close on): the lines at bars <= t must not move.
    changed.iloc[t + 1 :] = other.iloc[t + 1 :].to_numpy() * (df["close"].iloc[t] / other["close"].iloc[t])
    bars = np.asarray([1500, 1777, t])
    a, b = _collect(df, bars), _collect(changed, bars)
    assert a.rows.keys() == b.rows.keys()
    for key, rows in a.rows.items():
        if key[0] == CONTROL:
            continue
        other_rows = b.rows[key]
        assert rows.t == other_rows.t, key
        assert rows.price == other_rows.price, key
        assert rows.width == other_rows.width, key
    # The lookahead control does read them (so the comparison above can see a change).
    assert (
        a.rows[(CONTROL, "next 100 bars' high and low")].price != b.rows[(CONTROL, "next 100 bars' high and low")].price
    )
    # Some family drew lines at all (the comparison is not vacuous).
    assert sum(len(r.t) for k, r in a.rows.items() if k[0] == "htf") > 0
    assert sum(len(r.t) for k, r in a.rows.items() if k[0] == "sweep") > 0


def test_nearest_per_side_and_near_any() -> None:
    price = np.asarray([90.0, 95.0, 99.0, 100.0, 101.0, 120.0])
    picked = nearest_per_side(price, 100.0, 2)
    assert sorted(price[picked].tolist()) == [95.0, 99.0, 100.0, 101.0]
    assert near_any(np.asarray([10.0, 20.0]), np.asarray([10.2, 30.0]), 0.3).tolist() == [True, False]
    assert near_any(np.asarray([10.0]), np.zeros(0), 1.0).tolist() == [False]
