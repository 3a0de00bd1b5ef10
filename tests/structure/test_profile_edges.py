"""The profile's bin edges are np.linspace's to the bit, and a window of only flat or only wide candles (one of
the spread's two branches empty) still gives float volumes summing to the window's volume; report times from
epoch milliseconds equal those from a UTC index."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tools.structure.analysis import analyze_arrays
from tools.structure.profile import bin_edges, profile_hvn, volume_profile


def test_bin_edges_are_linspace_to_the_bit() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3000):
        bottom = rng.uniform(-1e6, 1e6) * 10.0 ** rng.integers(-8, 8)
        top = bottom + abs(rng.normal()) * 10.0 ** rng.integers(-12, 6)
        bins = int(rng.integers(1, 400))
        assert bin_edges(bottom, top, bins).tobytes() == np.linspace(bottom, top, bins + 1).tobytes()
    assert bin_edges(5.0, 5.0, 10).tobytes() == np.linspace(5.0, 5.0, 11).tobytes()  # no width: linspace's own


def test_only_flat_or_only_wide_candles() -> None:
    rng = np.random.default_rng(1)
    price = rng.uniform(90, 110, 300)
    vol = rng.uniform(1, 5, 300)
    flat = volume_profile(price, price, price, vol, bins=50)
    assert flat.volume.dtype == np.float64 and np.isclose(flat.total, vol.sum())
    wide = volume_profile(np.full(300, 120.0), np.full(300, 80.0), price, vol, bins=50)
    assert wide.volume.dtype == np.float64 and np.isclose(wide.total, vol.sum())
    assert np.allclose(wide.volume, vol.sum() / 50)  # every candle spans the whole range: an even spread
    assert profile_hvn(price, price, price, vol, bins=50) == list(flat.hvn)


def test_times_from_epoch_ms_equal_an_index() -> None:
    rng = np.random.default_rng(2)
    close = 100 + np.cumsum(rng.normal(0, 1, 600))
    high, low, vol = close + rng.uniform(0, 1, 600), close - rng.uniform(0, 1, 600), rng.uniform(1, 2, 600)
    ms = 1_700_000_000_000 + 3_600_000 * np.arange(600, dtype=np.int64)
    index = pd.DatetimeIndex(pd.to_datetime(ms, unit="ms", utc=True))
    by_index = analyze_arrays(high, low, close, vol, 599, "T", "1h", index)
    by_ms = analyze_arrays(high, low, close, vol, 599, "T", "1h", ms)
    assert by_ms == by_index and by_ms.as_of_time == index[599].to_pydatetime()
    assert by_ms.recent_pivots and all(p.time is not None for p in by_ms.recent_pivots)
