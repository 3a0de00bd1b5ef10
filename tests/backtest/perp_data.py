"""A perpetual's data folder for tests: the real BTC 1h candles as a freqtrade futures file, with a freqtrade
funding-rate file beside them (an event at every 00:00, 08:00 and 16:00 UTC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tools.market.files import FundingRates

EIGHT_HOURS_MS = 8 * 3_600_000


def perp_copy(src: Path, dst: Path, rate: float, spread: float = 0.0, seed: int = 0) -> FundingRates:
    """Write the folder `dst` from the spot candles in `src`; every event pays `rate`, plus normal noise of `spread`
    (seeded) so that rates differ from event to event. Returns the events written."""
    dst.mkdir()
    df = pd.read_csv(src / "BTC_USDT-1h.csv")
    df.to_csv(dst / "BTC_USDT_USDT-1h-futures.csv", index=False)
    first = -(-int(df["timestamp"].iloc[0]) // EIGHT_HOURS_MS) * EIGHT_HOURS_MS
    ts = np.arange(first, int(df["timestamp"].iloc[-1]), EIGHT_HOURS_MS, dtype=np.int64)
    rates = rate + (np.random.default_rng(seed).normal(0.0, spread, len(ts)) if spread else np.zeros(len(ts)))
    pd.DataFrame(
        {"date": pd.to_datetime(ts, unit="ms", utc=True), "open": rates, "high": rates, "low": rates, "close": rates,
         "volume": 0.0}
    ).to_feather(dst / "BTC_USDT_USDT-8h-funding_rate.feather")  # fmt: skip
    return FundingRates(ts, rates)
