"""The simulated market: determinism, consistent aggregation, live forming candles, realism vs real BTC."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.market.base import MarketData, MarketDataError, UnknownSymbolError
from tools.market.features import OhlcvArrays, resample
from tools.market.replay import ReplayMarketData, ms_to_datetime, to_ms
from tools.market.simgen import ORIGIN_MS
from tools.market.simulated import SimulatedMarketData

NOW = to_ms(pd.Timestamp("2025-09-01 13:37:20", tz="UTC"))
M15, H = 900_000, 3_600_000


def arrays_equal(a: OhlcvArrays, b: OhlcvArrays) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.columns(), b.columns(), strict=True))


def test_same_seed_same_candles_other_seed_other_candles() -> None:
    a = SimulatedMarketData(seed=7, now=NOW).candles("BTC", "1h", 300)
    b = SimulatedMarketData(seed=7, now=NOW).candles("btc/usdt:usdt", "1h", 300)
    c = SimulatedMarketData(seed=8, now=NOW).candles("BTC", "1h", 300)
    assert arrays_equal(a, b)
    assert not np.allclose(a.close, c.close)


def test_history_does_not_depend_on_when_it_is_asked() -> None:
    early = SimulatedMarketData(seed=3, now=NOW).candles("ETH", "15m", 400)
    late = SimulatedMarketData(seed=3, now=NOW + 90 * 24 * H)  # generates ~3 more chunks first
    late_view = late.candles("ETH", "15m", 100_000)
    idx = np.searchsorted(late_view.ts, early.ts[:-1])
    for x, y in zip(early.columns(), late_view.columns(), strict=True):
        np.testing.assert_array_equal(x[:-1], y[idx])  # all but the forming candle


@pytest.mark.parametrize("tf", ["1h", "4h", "1d"])
def test_higher_timeframes_aggregate_the_15m_candles(tf: str) -> None:
    market = SimulatedMarketData(seed=1, now=NOW)
    tf_ms = {"1h": H, "4h": 4 * H, "1d": 24 * H}[tf]
    high_tf = market.candles("SOL", tf, 20)
    base = market.candles("SOL", "15m", 20 * tf_ms // M15 + 8)
    want = resample(base.slice(int(np.searchsorted(base.ts, high_tf.ts[0])), len(base)), tf_ms)
    assert arrays_equal(high_tf, want)
    assert high_tf.ts[-1] == NOW // tf_ms * tf_ms  # the forming candle, aligned to UTC


def test_candles_are_well_formed() -> None:
    bars = SimulatedMarketData(seed=2, now=NOW).candles("DOGE", "15m", 5000)
    assert np.all(bars.high >= np.maximum(bars.open, bars.close)) and np.all(
        bars.low <= np.minimum(bars.open, bars.close)
    )
    assert np.all(bars.volume > 0) and np.all(np.diff(bars.ts) == M15)
    np.testing.assert_allclose(bars.open[1:], bars.close[:-1])  # no gaps between candles
    # Volume is tied to the candle's range.
    log_range = np.log(bars.high / bars.low)
    assert np.corrcoef(log_range, np.log(bars.volume))[0, 1] > 0.5


def test_forming_candle_grows_with_the_clock_and_closes_into_history() -> None:
    clock = {"t": (NOW // M15 * M15) / 1000}
    market = SimulatedMarketData(seed=5, clock=lambda: clock["t"])
    seen = []
    for _ in range(16):
        clock["t"] += 59
        seen.append(market.candles("BTC", "15m", 1))
    bar_open = seen[0].ts[0]
    assert all(s.ts[0] == bar_open for s in seen[:15])
    assert np.all(np.diff([s.high[0] for s in seen[:15]]) >= 0) and np.all(np.diff([s.low[0] for s in seen[:15]]) <= 0)
    assert np.all(np.diff([s.volume[0] for s in seen[:15]]) > 0)
    assert seen[-1].ts[0] == bar_open + M15  # the clock moved into the next bar
    closed = market.candles("BTC", "15m", 2).slice(0, 1)
    assert closed.ts[0] == bar_open and closed.close[0] >= closed.low[0]
    assert closed.high[0] >= seen[14].high[0] and closed.low[0] <= seen[14].low[0]


async def test_every_value_is_labelled_simulated() -> None:
    market = SimulatedMarketData(seed=4, now=NOW)
    assert isinstance(market, MarketData) and market.simulated
    ticker = await market.ticker("btc")
    last_15m = market.candles("BTC", "15m", 1)
    assert ticker.last == pytest.approx(last_15m.close[0])
    assert ticker.bid is not None and ticker.ask is not None and ticker.bid < ticker.last < ticker.ask
    values = [
        ticker,
        await market.funding("BTC"),
        await market.open_interest("BTC", 4),
        await market.book_imbalance("BTC", 20),
        await market.cvd("BTC", "4h"),
        await market.long_short_ratio("BTC"),
        await market.volatility("BTC", "1h", 200),
    ]
    for value in values:
        assert value is not None and value.simulated is True and value.source == "simulated"
        assert value.symbol == "BTC/USDT:USDT" and value.timestamp == ms_to_datetime(NOW)  # the market's own now
    frame = await market.ohlcv("BTC", "4h", 10)
    assert frame.attrs["simulated"] is True and frame.attrs["forming"] is True


async def test_funding_and_open_interest_are_plausible_series() -> None:
    market = SimulatedMarketData(seed=9, now=NOW)
    funding = await market.funding("ETH")
    assert -0.003 <= funding.rate <= 0.003
    assert funding.next_time is not None and funding.next_time.hour in (0, 8, 16) and funding.next_time.minute == 0
    rates, ois = [], []
    for day in range(0, 120, 3):
        market.set_now(NOW - day * 24 * H)
        rates.append((await market.funding("ETH")).rate)
        ois.append((await market.open_interest("ETH", 24)).value)
    assert len(set(np.round(rates, 8))) > 10 and np.mean(rates) > 0  # longs usually pay
    assert 0.2 < min(ois) / max(ois) < 1.0


def test_only_the_fixed_universe_exists_and_typos_get_suggestions() -> None:
    market = SimulatedMarketData(seed=0, now=NOW)
    assert len(market.symbols()) >= 25
    for base in ("BTC", "ETH", "SOL", "AVAX", "XRP", "DOGE", "LINK", "ADA", "POL"):  # SPEC §7 report symbols
        assert f"{base}/USDT:USDT" in market.symbols()
        assert len(market.candles(base.lower() + "usdt", "1h", 10)) == 10
    with pytest.raises(UnknownSymbolError, match="did you mean BTC/USDT:USDT") as typo:
        market.candles("BTCC", "1h", 10)
    assert typo.value.suggestions[0] == "BTC/USDT:USDT"
    for unknown in ("NEWCOIN", "ZZZNOTACOIN", "NOTACOIN/USDT:USDT"):
        with pytest.raises(UnknownSymbolError, match=f"Unknown symbol '{re.escape(unknown)}'"):
            market.candles(unknown, "1h", 10)
    with pytest.raises(UnknownSymbolError, match="available: BTC, ETH"):
        market.candles("QQQQQQQQ", "1h", 10)  # nothing close: the listing tells what exists
    with pytest.raises(UnknownSymbolError):
        market.candles("B@D", "1h", 10)
    with pytest.raises(MarketDataError, match="starts at"):
        SimulatedMarketData(now="2020-01-01").candles("BTC", "1h", 10)


async def test_every_value_of_an_unknown_symbol_is_refused() -> None:
    market = SimulatedMarketData(seed=0, now=NOW)
    for call in (
        market.ticker,
        market.funding,
        market.open_interest,
        market.book_imbalance,
        market.cvd,
        market.long_short_ratio,
        market.volatility,
    ):
        with pytest.raises(UnknownSymbolError):
            await call("NOTACOIN")  # type: ignore[operator]
    with pytest.raises(UnknownSymbolError):
        await market.ohlcv("NOTACOIN", "1h", 10)


def test_universe_prices_are_plausible() -> None:
    market = SimulatedMarketData(seed=0, now=ORIGIN_MS + 3_600_000)
    first = {s: float(market.candles(s, "1h", 1).open[0]) for s in market.symbols()}
    assert 80_000 < first["BTC/USDT:USDT"] < 110_000 and 1e-6 < first["PEPE/USDT:USDT"] < 1e-4
    assert all(p > 0 for p in first.values())


def _returns(close: np.ndarray) -> np.ndarray:
    return np.diff(np.log(close))


def _abs_acf(r: np.ndarray, lags: range) -> float:
    a = np.abs(r)
    return float(np.mean([np.corrcoef(a[:-k], a[k:])[0, 1] for k in lags]))


def test_simulated_returns_have_fat_tails_and_clustering() -> None:
    hourly = SimulatedMarketData(seed=11, now=NOW).candles("BTC", "1h", 5000)
    r = _returns(hourly.close)
    assert pd.Series(r).kurt() > 3  # a Gaussian walk would give about 0
    assert _abs_acf(r, range(1, 11)) > 0.1  # a walk without clustering would give about 0
    assert abs(np.corrcoef(r[:-1], r[1:])[0, 1]) < 0.1  # but no easy predictability of direction


@pytest.mark.data
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulated_btc_statistics_resemble_real_btc_1h(ohlcv_dir: Path, seed: int) -> None:
    """Bounds: simulated excess kurtosis within 1/3x..3x of real (and > 3); mean ACF of |r| over
    lags 1-10 within 0.5x..2x of real; |lag-1 ACF of r| < 0.1 for both."""
    real = ReplayMarketData(ohlcv_dir).candles("BTC", "1h", 100_000)
    real_r = _returns(real.close[-12_000:])
    sim_r = _returns(SimulatedMarketData(seed=seed, now=NOW).candles("BTC", "1h", 12_000).close)
    real_kurt, sim_kurt = pd.Series(real_r).kurt(), pd.Series(sim_r).kurt()
    assert sim_kurt > 3 and real_kurt / 3 <= sim_kurt <= real_kurt * 3, (real_kurt, sim_kurt)
    real_acf, sim_acf = _abs_acf(real_r, range(1, 11)), _abs_acf(sim_r, range(1, 11))
    assert 0.5 * real_acf <= sim_acf <= 2 * real_acf, (real_acf, sim_acf)
    assert abs(np.corrcoef(sim_r[:-1], sim_r[1:])[0, 1]) < 0.1
    # Volatility of the same order as BTC's (hourly std within 0.5x..2x).
    assert 0.5 <= sim_r.std() / real_r.std() <= 2


def _efficiency(close: np.ndarray, window: int) -> np.ndarray:
    """Net move / path length over windows: near 1 trending, near 0 ranging."""
    n = len(close) // window * window
    blocks = close[:n].reshape(-1, window)
    net = np.abs(blocks[:, -1] - blocks[:, 0])
    path = np.abs(np.diff(blocks, axis=1)).sum(axis=1)
    return net / path


def test_simulated_market_has_trending_and_ranging_stretches() -> None:
    bars = SimulatedMarketData(seed=12, now=NOW).candles("BTC", "1h", 6000)
    er = _efficiency(bars.close, 48)
    assert np.mean(er > 0.4) > 0.05 and np.mean(er < 0.1) > 0.2


def test_history_starts_at_the_origin() -> None:
    market = SimulatedMarketData(seed=0, now="2025-03-01T06:00:00Z")
    daily = market.candles("BTC", "1d", 500)
    assert len(daily) == 59 + 1 and daily.ts[0] == to_ms(pd.Timestamp("2025-01-01", tz="UTC"))
