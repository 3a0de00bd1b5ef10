"""Replay from files: formats, the movable "now" (no look-ahead), resampling, and the real Binance files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.market.base import MarketData, MarketDataError, UnknownSymbolError
from tools.market.features import OhlcvArrays, resample
from tools.market.replay import ReplayMarketData, ms_to_datetime, to_ms

M15, H = 900_000, 3_600_000
START = 1_700_000_000_000 // (4 * H) * (4 * H) + 4 * H  # a 4h (and day-aligned enough) boundary
N_15M = 4 * 24 * 12  # twelve days of 15m candles


def synthetic_15m(seed: int = 1) -> OhlcvArrays:
    """A random walk of 15m candles with one missing candle (exchanges have gaps)."""
    rng = np.random.default_rng(seed)
    ts = START + np.arange(N_15M, dtype=np.int64) * M15
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, N_15M)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.002, N_15M))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.002, N_15M))
    volume = rng.uniform(10, 100, N_15M)
    keep = np.ones(N_15M, bool)
    keep[500] = False
    return OhlcvArrays(ts[keep], open_[keep], high[keep], low[keep], close[keep], volume[keep])


def write_csv(path: Path, arrays: OhlcvArrays) -> None:
    df = pd.DataFrame(
        {
            "timestamp": arrays.ts,
            "open": arrays.open,
            "high": arrays.high,
            "low": arrays.low,
            "close": arrays.close,
            "volume": arrays.volume,
        }
    )
    df.insert(1, "datetime", pd.to_datetime(df["timestamp"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    df.to_csv(path, index=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """AAA: 15m + 1h CSV (4h/1d missing). BBB: freqtrade futures feather. CCC: freqtrade JSON in futures/."""
    base = synthetic_15m()
    write_csv(tmp_path / "AAA_USDT-15m.csv", base)
    write_csv(tmp_path / "AAA_USDT-1h.csv", resample(base, H))
    hourly = resample(base, H)
    pd.DataFrame(
        {
            "date": pd.to_datetime(hourly.ts, unit="ms", utc=True),
            "open": hourly.open,
            "high": hourly.high,
            "low": hourly.low,
            "close": hourly.close,
            "volume": hourly.volume,
        }
    ).to_feather(tmp_path / "BBB_USDT_USDT-1h.feather")
    (tmp_path / "futures").mkdir()
    rows = np.column_stack([hourly.ts, hourly.open, hourly.high, hourly.low, hourly.close, hourly.volume]).tolist()
    (tmp_path / "futures" / "CCC_USDT_USDT-1h-futures.json").write_text(json.dumps(rows))
    (tmp_path / "AAA_USDT-8h-funding_rate.json").write_text("[]")  # not candles: a funding-rate file, empty
    return tmp_path


def test_discovers_all_formats_and_symbol_spellings(data_dir: Path) -> None:
    replay = ReplayMarketData(data_dir)
    assert isinstance(replay, MarketData)
    assert replay.symbols() == ["AAA/USDT:USDT", "BBB/USDT:USDT", "CCC/USDT:USDT"]
    for spelling in ("aaa", "AAAUSDT", "AAA/USDT", "AAA/USDT:USDT"):
        assert replay.resolve(spelling) == "AAA/USDT:USDT"
    with pytest.raises(UnknownSymbolError) as info:
        replay.resolve("AAB")
    assert "AAA/USDT:USDT" in info.value.suggestions


def test_csv_feather_and_json_load_the_same_candles(data_dir: Path) -> None:
    replay = ReplayMarketData(data_dir)
    a, b, c = (replay.candles(s, "1h", 10_000) for s in ("AAA", "BBB", "CCC"))
    for other in (b, c):
        assert np.array_equal(a.ts, other.ts)
        for x, y in zip(a.columns()[1:], other.columns()[1:], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-12)


def test_missing_folder_or_files_raise_clearly(tmp_path: Path) -> None:
    with pytest.raises(MarketDataError, match="does not exist"):
        ReplayMarketData(tmp_path / "nope")
    with pytest.raises(MarketDataError, match="No candle files"):
        ReplayMarketData(tmp_path)


def _check_visible(replay: ReplayMarketData, symbol: str, tf: str, now: int, lower: OhlcvArrays | None) -> None:
    tf_ms = {"15m": M15, "1h": H, "4h": 4 * H, "1d": 24 * H}[tf]
    out = replay.candles(symbol, tf, 50)
    if len(out) == 0:
        return
    assert np.all(np.diff(out.ts) > 0)
    assert np.all(out.ts[:-1] + tf_ms <= now), "a closed candle ends after now"
    assert out.ts[-1] <= now
    if out.ts[-1] + tf_ms > now:
        # The partial candle: only lower-timeframe candles that closed by now went into it.
        assert lower is not None
        lo_ms = int(np.median(np.diff(lower.ts)))
        inside = (lower.ts >= out.ts[-1]) & (lower.ts + lo_ms <= now)
        assert inside.any()
        assert out.close[-1] == lower.close[inside][-1]
        assert out.high[-1] == lower.high[inside].max() and out.low[-1] == lower.low[inside].min()
        assert out.volume[-1] == pytest.approx(lower.volume[inside].sum())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(min_value=0, max_value=N_15M * M15), tf=st.sampled_from(["15m", "1h", "4h", "1d"]))
def test_never_returns_a_candle_after_now(data_dir: Path, offset: int, tf: str) -> None:
    replay = ReplayMarketData(data_dir, now=START + offset)
    base = synthetic_15m()
    _check_visible(replay, "AAA", tf, START + offset, base if tf != "15m" else None)
    # Native 1h file with the 15m file below it: the forming hour is partial, built from 15m.
    frame_close_time = replay.candles("AAA", "15m", 1)
    if len(frame_close_time):
        assert frame_close_time.ts[-1] + M15 <= START + offset


def test_resampled_timeframe_matches_direct_aggregation(data_dir: Path) -> None:
    base = synthetic_15m()
    replay = ReplayMarketData(data_dir, now=START + 7 * 24 * H + 2 * H + 30 * 60_000)  # 02:30 of a day
    got = replay.candles("AAA", "4h", 1000)
    # 4h is missing: built from 1h (the coarsest file dividing 4h); the forming 00:00 bucket from 15m.
    want = resample(base, 4 * H)
    closed = got.slice(0, len(got) - 1)
    idx = np.searchsorted(want.ts, closed.ts)
    np.testing.assert_allclose(closed.open, want.open[idx])
    np.testing.assert_allclose(closed.high, want.high[idx])
    np.testing.assert_allclose(closed.close, want.close[idx])
    np.testing.assert_allclose(closed.volume, want.volume[idx])
    assert got.ts[-1] == START + 7 * 24 * H  # 4h bucket containing now, aligned to UTC
    assert got.ts[-1] % (4 * H) == 0


async def test_set_now_and_advance_move_the_visible_end(data_dir: Path) -> None:
    replay = ReplayMarketData(data_dir, now=START + 10 * H)
    frame = await replay.ohlcv("AAA", "1h", 3)
    assert frame.index[-1] == pd.Timestamp(START + 9 * H, unit="ms", tz="UTC")
    assert frame.attrs["forming"] is False
    replay.advance(15 * 60)
    frame = await replay.ohlcv("AAA", "1h", 3)
    assert frame.index[-1] == pd.Timestamp(START + 10 * H, unit="ms", tz="UTC") and frame.attrs["forming"]
    replay.set_now(pd.Timestamp(START + 5 * H, unit="ms", tz="UTC"))
    assert replay.now_ms == START + 5 * H
    assert (await replay.ohlcv("AAA", "1h", 100)).index[-1] < pd.Timestamp(START + 5 * H, unit="ms", tz="UTC")
    replay.set_now(None)
    assert len(await replay.ohlcv("AAA", "15m", 10_000)) == N_15M - 1


async def test_ticker_is_the_last_closed_price(data_dir: Path) -> None:
    base = synthetic_15m()
    now = START + 3 * 24 * H + 20 * 60_000
    replay = ReplayMarketData(data_dir, now=now)
    ticker = await replay.ticker("AAAUSDT")
    i = int(np.searchsorted(base.ts, now - M15, side="right")) - 1
    assert ticker.last == base.close[i] and ticker.source == "replay" and not ticker.simulated
    j = int(np.searchsorted(base.ts, base.ts[i] - 24 * H, side="right")) - 1
    assert ticker.change_24h_pct == pytest.approx(100 * (base.close[i] / base.close[j] - 1))
    assert ticker.bid is None and ticker.ask is None


async def test_values_not_in_files_are_refused_or_none(data_dir: Path) -> None:
    replay = ReplayMarketData(data_dir, now=START + 5 * 24 * H)
    for call in (replay.open_interest("AAA"), replay.book_imbalance("AAA")):
        with pytest.raises(MarketDataError, match="candle files only"):
            await call
    with pytest.raises(MarketDataError, match="no funding-rate file"):
        await replay.funding("BBB")
    assert replay.funding_rates("BBB") is None
    empty = replay.funding_rates("AAA")  # AAA's funding-rate file holds no event
    assert empty is not None and len(empty) == 0
    with pytest.raises(MarketDataError, match="No AAA/USDT:USDT funding rate before"):
        await replay.funding("AAA")
    assert await replay.long_short_ratio("AAA") is None
    cvd = await replay.cvd("AAA", "1h")
    assert cvd.approximate is True and cvd.buy_volume + cvd.sell_volume > 0
    assert cvd.cvd == cvd.buy_volume - cvd.sell_volume
    vol = await replay.volatility("AAA", "1h", lookback=100)
    assert vol.regime in ("LOW", "NORMAL", "HIGH", "EXTREME") and not vol.simulated
    for value in (cvd, vol):  # stamped at the replay time, labelled as replayed (not simulated) data
        assert (value.source, value.simulated, value.timestamp) == ("replay", False, ms_to_datetime(START + 5 * 24 * H))


def test_time_conversions() -> None:
    assert to_ms(pd.Timestamp("2024-01-01", tz="UTC")) == 1_704_067_200_000
    assert to_ms(pd.Timestamp("2024-01-01").to_pydatetime()) == 1_704_067_200_000  # naive = UTC
    assert to_ms(1_704_067_200_000) == 1_704_067_200_000


# -- the real Binance files -------------------------------------------------------------------


@pytest.mark.data
def test_real_4h_resampled_from_1h_matches_the_exchange_4h(ohlcv_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "BTC_USDT-1h.csv").symlink_to(ohlcv_dir / "BTC_USDT-1h.csv")
    built = ReplayMarketData(tmp_path).candles("BTC", "4h", 100_000)
    native = ReplayMarketData(ohlcv_dir).candles("BTC", "4h", 100_000)
    hourly = ReplayMarketData(tmp_path).candles("BTC", "1h", 100_000)
    # Compare only 4h buckets whose four hours are all present (the files have real outages).
    counts = np.bincount(((hourly.ts - built.ts[0]) // (4 * H)).astype(np.int64))
    complete = built.ts[counts[(built.ts - built.ts[0]) // (4 * H)] == 4][:-1]
    common = np.intersect1d(complete, native.ts)
    assert len(common) > 9_000
    a, b = np.searchsorted(built.ts, common), np.searchsorted(native.ts, common)
    for x, y in zip(built.columns()[1:5], native.columns()[1:5], strict=True):
        np.testing.assert_array_equal(x[a], y[b])
    np.testing.assert_allclose(built.volume[a], native.volume[b], rtol=1e-6)


@pytest.mark.data
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    day=st.integers(min_value=0, max_value=400),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    tf=st.sampled_from(["15m", "1h", "4h", "1d"]),
)
def test_real_files_never_leak_the_future(ohlcv_dir: Path, day: int, minute: int, tf: str) -> None:
    now = to_ms(pd.Timestamp("2025-01-02", tz="UTC")) + day * 24 * H + minute * 60_000
    replay = _real(ohlcv_dir)
    replay.set_now(now)
    lower = replay.candles("ETH", "15m", 200)
    _check_visible(replay, "ETH", tf, now, lower if tf != "15m" else None)


_REAL: dict[Path, ReplayMarketData] = {}


def _real(path: Path) -> ReplayMarketData:
    # Files load once per test session: the hypothesis examples share one provider.
    if path not in _REAL:
        _REAL[path] = ReplayMarketData(path)
    return _REAL[path]


@pytest.mark.data
async def test_real_ticker_and_candles_at_a_known_time(ohlcv_dir: Path) -> None:
    replay = _real(ohlcv_dir)
    replay.set_now(pd.Timestamp("2021-08-22 00:00", tz="UTC"))
    frame = await replay.ohlcv("btc", "1h", 3)
    # Second row of BTC_USDT-1h.csv: 2021-08-21 22:00 closed at 49336.35.
    assert frame.loc[pd.Timestamp("2021-08-21 22:00", tz="UTC"), "close"] == 49336.35
    assert frame.index[-1] == pd.Timestamp("2021-08-21 23:00", tz="UTC")
    ticker = await replay.ticker("BTC/USDT:USDT")
    assert ticker.last == frame["close"].iloc[-1]


async def test_returned_frames_are_copies_of_the_cached_series(data_dir: Path) -> None:
    replay = ReplayMarketData(data_dir, now=START + 5 * 24 * H)
    frame = await replay.ohlcv("AAA", "1h", 10)
    frame.loc[:, "close"] = -1.0
    assert (await replay.ohlcv("AAA", "1h", 10))["close"].min() > 0
    with pytest.raises(MarketDataError):
        replay.candles("AAA", "1h", 0)


async def test_a_file_that_ends_early_is_continued_from_a_lower_timeframe(ohlcv_dir: Path) -> None:
    """The 4h files end before the 1h files: the missing 4h candles come from 1h, with no hole."""
    md = ReplayMarketData(ohlcv_dir)
    frame = await md.ohlcv("ETH", "4h", limit=30)
    steps = frame.index.to_series().diff().dropna()
    assert (steps == pd.Timedelta(hours=4)).all(), steps[steps != pd.Timedelta(hours=4)]
    one_h = await md.ohlcv("ETH", "1h", limit=30)
    assert frame.index[-1] >= one_h.index[-1].floor("4h")
