"""Funding-rate files beside the candles: freqtrade's and ccxt's forms are found and read, a corrupt one is refused
naming the line, and the replay answers the last rate settled at or before its clock, never a later one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.market.base import MarketDataError
from tools.market.files import discover, discover_funding, load_funding
from tools.market.replay import ReplayMarketData, ms_to_datetime

H = 3_600_000
START = 1_704_067_200_000  # 2024-01-01 00:00 UTC
EVENTS = START + np.arange(12, dtype=np.int64) * 8 * H
RATES = np.linspace(-0.0002, 0.0009, 12)


def candles(folder: Path, name: str = "BTC_USDT_USDT-1h-futures.csv") -> None:
    n = 24 * 5
    close = 100 + np.arange(n) * 0.1
    pd.DataFrame(
        {"timestamp": START + np.arange(n, dtype=np.int64) * H, "open": close, "high": close + 1, "low": close - 1,
         "close": close, "volume": 10.0}
    ).to_csv(folder / name, index=False)  # fmt: skip


def freqtrade_feather(path: Path) -> None:
    pd.DataFrame(
        {"date": pd.to_datetime(EVENTS, unit="ms", utc=True), "open": RATES, "high": RATES, "low": RATES,
         "close": RATES, "volume": 0.0}
    ).to_feather(path)  # fmt: skip


@pytest.mark.parametrize("form", ["feather", "ccxt_csv", "json", "futures_folder"])
def test_funding_files_are_found_and_read_in_each_form(tmp_path: Path, form: str) -> None:
    candles(tmp_path)
    if form == "feather":
        freqtrade_feather(tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather")
    elif form == "ccxt_csv":
        pd.DataFrame({"timestamp": EVENTS, "symbol": "BTC/USDT:USDT", "fundingRate": RATES}).to_csv(
            tmp_path / "BTC_USDT_USDT-funding.csv", index=False
        )
    elif form == "json":
        rows = [[int(t), float(r), float(r), float(r), float(r), 0.0] for t, r in zip(EVENTS, RATES, strict=True)]
        (tmp_path / "BTC_USDT_USDT-8h-funding_rate.json").write_text(json.dumps(rows))
    else:
        (tmp_path / "futures").mkdir()
        freqtrade_feather(tmp_path / "futures" / "BTC_USDT_USDT-8h-funding_rate.feather")
    files = discover_funding(tmp_path)
    assert list(files) == ["BTC"]
    rates = load_funding(files["BTC"])
    np.testing.assert_array_equal(rates.ts, EVENTS)
    np.testing.assert_allclose(rates.rate, RATES)
    assert list(discover(tmp_path)) == [("BTC", "1h")]  # a funding file is never taken for candles


async def test_the_replay_answers_the_last_rate_settled_by_its_clock(tmp_path: Path) -> None:
    candles(tmp_path)
    freqtrade_feather(tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather")
    replay = ReplayMarketData(tmp_path, now=START + 20 * H)  # after the events at 0h, 8h and 16h
    got = await replay.funding("btc")
    assert (got.rate, got.timestamp) == (pytest.approx(RATES[2]), ms_to_datetime(int(EVENTS[2])))
    assert got.next_time == ms_to_datetime(START + 24 * H) and got.interval_hours == 8.0
    assert (got.source, got.simulated, got.symbol) == ("replay", False, "BTC/USDT:USDT")
    replay.set_now(START + 24 * H)  # exactly at an event: it has settled
    assert (await replay.funding("BTC")).rate == pytest.approx(RATES[3])
    replay.set_now(START - H)
    with pytest.raises(MarketDataError, match="No BTC/USDT:USDT funding rate before 2023-12-31 23:00"):
        await replay.funding("BTC")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"timestamp": [START, START + 8 * H], "fundingRate": [0.0001, 0.5]}, "line 3: rate 0.5 is not a funding rate"),
        ({"timestamp": [START, START], "fundingRate": [0.0001, 0.0001]}, "line 3: time is not after the previous"),
        ({"timestamp": [START, START + H], "fundingRate": [0.0001, "x"]}, "line 3: rate nan is not a funding rate"),
        ({"date": ["2024-01-01", "soon"], "fundingRate": [0.0001, 0.0001]}, "line 3: no readable time"),
        ({"timestamp": [START], "premium": [0.0001]}, "has no rate column"),
        ({"fundingRate": [0.0001]}, "has no timestamp/date column"),
    ],
)
def test_a_corrupt_funding_file_is_refused_naming_the_line(
    tmp_path: Path, frame: dict[str, list[object]], message: str
) -> None:
    candles(tmp_path)
    pd.DataFrame(frame).to_csv(tmp_path / "BTC_USDT_USDT-funding.csv", index=False)
    replay = ReplayMarketData(tmp_path)
    with pytest.raises(MarketDataError, match=f"Funding file BTC_USDT_USDT-funding.csv.*{message}"):
        replay.funding_rates("BTC")
