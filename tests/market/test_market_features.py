"""Pure features: resampling, CVD approximation, book imbalance, volatility regime."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tools.market.base import MarketDataError
from tools.market.features import (
    OhlcvArrays,
    book_imbalance,
    cvd_from_candles,
    cvd_from_trades,
    regime_for,
    resample,
    rows_to_arrays,
    volatility_regime,
    window_seconds,
)

H = 3_600_000


def frame(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    ts = [i * H for i in range(len(rows))]
    return rows_to_arrays([[t, *r] for t, r in zip(ts, rows, strict=True)]).to_frame()


def test_cvd_from_candles_splits_volume_by_close_position() -> None:
    df = frame([(10, 12, 9, 12, 100), (10, 12, 9, 9, 50), (10, 10, 10, 10, 8), (10, 13, 9, 11, 40)])
    buy, sell = cvd_from_candles(df)
    assert buy == pytest.approx(100 + 0 + 4 + 20)
    assert sell == pytest.approx(0 + 50 + 4 + 20)


def test_cvd_from_trades() -> None:
    trades = [{"side": "buy", "amount": 1.5}, {"side": "sell", "amount": 0.5}, {"side": "buy", "amount": 2}]
    assert cvd_from_trades(trades) == (3.5, 0.5)


def test_resample_aligns_to_utc_and_tolerates_gaps() -> None:
    # 1h candles from 01:00 to 09:00 with 06:00 missing -> 4h buckets 00:00, 04:00, 08:00.
    hours = [1, 2, 3, 4, 5, 7, 8, 9]
    rows = [[h * H, 100 + h, 110 + h, 90 + h, 101 + h, 1.0 + h] for h in hours]
    out = resample(rows_to_arrays(rows), 4 * H)
    assert out.ts.tolist() == [0, 4 * H, 8 * H]
    assert out.open.tolist() == [101, 104, 108]
    assert out.high.tolist() == [113, 117, 119]
    assert out.low.tolist() == [91, 94, 98]
    assert out.close.tolist() == [104, 108, 110]
    assert out.volume.tolist() == [2 + 3 + 4, 5 + 6 + 8, 9 + 10]


def test_rows_are_sorted_and_deduplicated_keeping_the_latest() -> None:
    arrays = rows_to_arrays([[2 * H, 1, 1, 1, 1, 1], [H, 2, 2, 2, 2, 2], [2 * H, 3, 3, 3, 3, 3]])
    assert arrays.ts.tolist() == [H, 2 * H] and arrays.close.tolist() == [2, 3]


def test_frame_contract() -> None:
    df = OhlcvArrays.empty().to_frame()
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert str(df.index.tz) == "UTC" and df.index.name == "time"


def test_book_imbalance() -> None:
    imbalance, bid, ask = book_imbalance([[100, 3], [99, 1], [98, 50]], [[101, 1], [102, 1]], depth=2)
    assert (imbalance, bid, ask) == (pytest.approx(1 / 3), 4.0, 2.0)
    with pytest.raises(MarketDataError):
        book_imbalance([], [], 5)


def test_regime_bounds() -> None:
    assert [regime_for(p) for p in (0, 19.9, 20, 79.9, 80, 94.9, 95, 100)] == [
        "LOW",
        "LOW",
        "NORMAL",
        "NORMAL",
        "HIGH",
        "HIGH",
        "EXTREME",
        "EXTREME",
    ]


def _walk(ranges: np.ndarray) -> pd.DataFrame:
    close = 100 + np.cumsum(np.sin(np.arange(len(ranges))))
    return frame([(c, c + r / 2, c - r / 2, c, 1.0) for c, r in zip(close, ranges, strict=True)])


def test_volatility_regime_extreme_after_a_spike_and_low_when_quiet() -> None:
    calm = np.full(300, 1.0)
    spike = volatility_regime(_walk(np.r_[calm, np.full(5, 8.0)]), lookback=200)
    assert spike.regime == "EXTREME" and spike.percentile >= 95
    quiet = volatility_regime(_walk(np.r_[np.full(300, 3.0), np.full(40, 0.5)]), lookback=200)
    assert quiet.regime == "LOW" and quiet.percentile < 20
    assert quiet.atr_pct_of_price == pytest.approx(100 * quiet.atr / 100, rel=0.2)


def test_volatility_needs_enough_candles() -> None:
    with pytest.raises(MarketDataError):
        volatility_regime(_walk(np.ones(10)), 100)


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1h", 3600), ("4h", 14_400), ("1d", 86_400), ("90s", 90)])
def test_window_seconds(text: str, seconds: int) -> None:
    assert window_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1y", "-1h", "0m"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(MarketDataError):
        window_seconds(text)
