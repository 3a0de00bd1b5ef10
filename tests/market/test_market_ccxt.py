"""The ccxt live provider over recorded REST responses: ccxt's real parsers, caching, retries, fallback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import ccxt
import pandas as pd
import pytest

from storage.retry import RetryPolicy
from tests.market.conftest import SleepLog
from tests.market.recorded import FIXTURES, RECORDED_AT_MS, Recorder, recorded_exchange
from tools.market.base import OHLCV_COLUMNS, MarketData, MarketDataError, UnknownSymbolError
from tools.market.cache import CoalescingCache
from tools.market.ccxt_live import CcxtMarketData
from tools.market.features import volatility_regime
from tools.market.retry import MARKET_RETRY

NOW_S = RECORDED_AT_MS / 1000


def recorded(exchange_id: str, method: str, index: int = 0) -> Any:
    """The recorded HTTP body of a fixture entry."""
    data = json.loads((FIXTURES / f"{exchange_id}.json").read_text())
    return data["methods"][method][index]["httpResponse"]


class FakeClock:
    """A settable monotonic clock for cache expiry."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def live(fast_retry: RetryPolicy) -> AsyncIterator[tuple[CcxtMarketData, Recorder, Recorder]]:
    """binanceusdm with a bybit fallback, both answering from recorded responses."""
    primary, rec = recorded_exchange("binanceusdm")
    fallback, rec_fb = recorded_exchange("bybit")
    provider = CcxtMarketData(primary, fallback, retry=fast_retry, clock=lambda: NOW_S)
    yield provider, rec, rec_fb
    await provider.close()


async def test_provider_satisfies_protocol_and_rate_limits(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, _, _ = live
    assert isinstance(provider, MarketData)
    assert provider.exchange.enableRateLimit is True
    assert provider.name == "binanceusdm" and provider.simulated is False


@pytest.mark.parametrize("spelling", ["btc", "BTC", "BTCUSDT", "BTC/USDT", "BTC/USDT:USDT", "btc-usdt-swap"])
async def test_symbol_spellings_resolve_to_the_perp(
    live: tuple[CcxtMarketData, Recorder, Recorder], spelling: str
) -> None:
    provider, _, _ = live
    # The fixture also lists the BTCUSDT_250328 quarterly future: it must not be picked.
    assert await provider.resolve(spelling) == "BTC/USDT:USDT"


async def test_unknown_symbol_lists_close_matches(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, _, _ = live
    with pytest.raises(UnknownSymbolError) as info:
        await provider.ticker("BTCC")
    assert "BTC/USDT:USDT" in info.value.suggestions
    assert "did you mean" in info.value.user_message


async def test_ticker_parsed_by_ccxt(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, rec, _ = live
    raw = recorded("binanceusdm", "fetchTicker", 0)
    book = recorded("binanceusdm", "fetchBidsAsks", 0)
    ticker = await provider.ticker("btc")
    assert ticker.symbol == "BTC/USDT:USDT" and ticker.source == "binanceusdm" and not ticker.simulated
    assert ticker.last == float(raw["lastPrice"])
    assert ticker.change_24h_pct == pytest.approx(float(raw["priceChangePercent"]))
    assert (ticker.bid, ticker.ask) == (float(book["bidPrice"]), float(book["askPrice"]))
    assert ticker.timestamp == datetime.fromtimestamp((raw["closeTime"]) / 1000, tz=UTC)
    assert rec.count("/fapi/v1/ticker/24hr") == 1 and rec.count("/fapi/v1/ticker/bookTicker") == 1


async def test_ohlcv_frame_contract_and_values(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, _, _ = live
    klines = recorded("binanceusdm", "fetchOHLCV")
    frame = await provider.ohlcv("BTCUSDT", "1h", limit=24)
    assert list(frame.columns) == list(OHLCV_COLUMNS)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC" and frame.index.name == "time"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique and len(frame) == 24
    assert all(frame[c].dtype == "float64" for c in OHLCV_COLUMNS)
    last = klines[-1]
    assert frame.index[-1] == pd.Timestamp(last[0], unit="ms", tz="UTC")
    assert frame.iloc[-1].tolist() == [float(x) for x in last[1:6]]
    assert frame.attrs["forming"] is True  # 12:00 candle at 12:30
    assert frame.attrs["source"] == "binanceusdm"


async def test_funding_open_interest_book_and_ratio(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, rec, _ = live
    funding = await provider.funding("BTC")
    assert funding.rate == pytest.approx(0.0001234)
    assert funding.next_time == datetime(2025, 2, 20, 16, tzinfo=UTC)

    oi = await provider.open_interest("BTC", window_hours=4)
    hist = recorded("binanceusdm", "fetchOpenInterestHistory")
    assert oi.value == pytest.approx(float(hist[-1]["sumOpenInterest"]))
    assert oi.value_usd == pytest.approx(float(hist[-1]["sumOpenInterestValue"]))
    assert oi.change_pct == pytest.approx(100 * (1.01**4 - 1), rel=1e-6)

    book = await provider.book_imbalance("BTC", depth=10)
    depth = recorded("binanceusdm", "fetchOrderBook")
    bids = sum(float(q) for _, q in depth["bids"][:10])
    asks = sum(float(q) for _, q in depth["asks"][:10])
    assert book.imbalance == pytest.approx((bids - asks) / (bids + asks))
    assert "limit=10" in next(u for u in rec.requests if "/fapi/v1/depth" in u)

    ratio = await provider.long_short_ratio("BTC")
    assert ratio is not None and ratio.ratio == pytest.approx(1.8233)


async def test_binance_cvd_uses_exchange_taker_volume(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, _, _ = live
    rows = recorded("binanceusdm", "fapiPublicGetKlines")
    cvd = await provider.cvd("BTC", "1h")
    buy, total = sum(float(r[9]) for r in rows), sum(float(r[5]) for r in rows)
    assert cvd.approximate is False
    assert cvd.buy_volume == pytest.approx(buy) and cvd.sell_volume == pytest.approx(total - buy)
    assert cvd.cvd == pytest.approx(2 * buy - total)


async def test_trade_cvd_and_candle_fallback_on_other_exchanges(fast_retry: RetryPolicy) -> None:
    exchange, rec = recorded_exchange("bybit")
    provider = CcxtMarketData(exchange, retry=fast_retry, clock=lambda: NOW_S)
    try:
        trades = recorded("bybit", "fetchTrades")["result"]["list"]
        in_hour = [t for t in trades if int(t["time"]) > RECORDED_AT_MS - 3_600_000]
        exact = await provider.cvd("BTC", "1h")
        assert exact.approximate is False
        buy = sum(float(t["size"]) for t in in_hour if t["side"] == "Buy")
        sell = sum(float(t["size"]) for t in in_hour if t["side"] == "Sell")
        assert exact.buy_volume == pytest.approx(buy) and exact.sell_volume == pytest.approx(sell)
        # One page of trades spans 65 minutes: a 2h window needs the candle estimate, flagged.
        estimate = await provider.cvd("BTC", "2h")
        assert estimate.approximate is True and estimate.buy_volume + estimate.sell_volume > 0
        assert rec.count("interval=1&") + rec.count("interval=1") >= 1
    finally:
        await provider.close()


async def test_volatility_regime_from_closed_candles(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, _, _ = live
    vol = await provider.volatility("BTC", "1h", lookback=30)
    frame = await provider.ohlcv("BTC", "1h", 45)
    expected = volatility_regime(frame.iloc[:-1], 30)
    assert (vol.regime, vol.percentile) == (expected.regime, expected.percentile)
    assert vol.atr == pytest.approx(expected.atr)
    assert (vol.source, vol.simulated, vol.timestamp) == ("binanceusdm", False, datetime.fromtimestamp(NOW_S, UTC))


async def test_price_cached_for_half_a_second(fast_retry: RetryPolicy) -> None:
    clock = FakeClock()
    exchange, rec = recorded_exchange("binanceusdm")
    provider = CcxtMarketData(exchange, retry=fast_retry, cache=CoalescingCache(clock=clock), clock=lambda: NOW_S)
    try:
        await provider.ticker("BTC")
        clock.t += 0.4
        await provider.ticker("BTCUSDT")
        assert rec.count("/ticker/24hr") == 1
        clock.t += 0.2
        await provider.ticker("BTC")
        assert rec.count("/ticker/24hr") == 2
        await provider.ohlcv("BTC", "1h", 10)
        clock.t += 0.9
        await provider.ohlcv("BTC", "1h", 10)
        assert rec.count("/fapi/v1/klines") == 1
        clock.t += 0.2
        await provider.ohlcv("BTC", "1h", 10)
        assert rec.count("/fapi/v1/klines") == 2
    finally:
        await provider.close()


async def test_closed_candle_range_cached_until_evicted(fast_retry: RetryPolicy) -> None:
    clock = FakeClock()
    exchange, rec = recorded_exchange("binanceusdm")
    provider = CcxtMarketData(exchange, retry=fast_retry, cache=CoalescingCache(clock=clock), clock=lambda: NOW_S)
    try:
        start, end = pd.Timestamp("2025-02-19 00:00", tz="UTC"), pd.Timestamp("2025-02-20 00:00", tz="UTC")
        first = await provider.ohlcv_range("BTC", "1h", start, end)
        assert len(first) == 24 and first.index[0] == start and first.index[-1] < end
        assert first.attrs["forming"] is False
        clock.t += 3600
        again = await provider.ohlcv_range("BTC", "1h", start, end)
        pd.testing.assert_frame_equal(first, again)
        assert rec.count("/fapi/v1/klines") == 1
    finally:
        await provider.close()


async def test_concurrent_requests_coalesce_into_one_call(fast_retry: RetryPolicy) -> None:
    exchange, rec = recorded_exchange("binanceusdm")

    async def slow(url: str) -> None:
        await asyncio.sleep(0.01)  # keep the request in flight while the others arrive

    rec.before = slow
    provider = CcxtMarketData(exchange, retry=fast_retry, clock=lambda: NOW_S)
    try:
        spellings = ["btc", "BTCUSDT", "BTC/USDT", "BTC/USDT:USDT"] * 50 + ["eth"] * 50
        results = await asyncio.gather(*(provider.ticker(s) for s in spellings))
        assert {r.symbol for r in results} == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
        assert rec.count("/ticker/24hr") == 2
        assert provider.cache.stats.coalesced == len(spellings) - 2
    finally:
        await provider.close()


async def test_rate_limit_and_network_errors_back_off_then_succeed(
    live: tuple[CcxtMarketData, Recorder, Recorder], sleeps: SleepLog
) -> None:
    provider, rec, rec_fb = live
    rec.fail_next(ccxt.RateLimitExceeded("binanceusdm 429 Too Many Requests"), "/ticker/24hr")
    rec.fail_next(
        ccxt.NetworkError("binanceusdm GET https://fapi.binance.com/fapi/v1/ticker/24hr connection reset"),
        "/ticker/24hr",
    )
    ticker = await provider.ticker("BTC")
    assert ticker.source == "binanceusdm"
    assert rec.count("/ticker/24hr") == 3 and rec_fb.requests == []
    assert len(sleeps.delays) == 2
    # A rate limit waits longer than a dropped connection, and the backoff grows.
    policy = MARKET_RETRY
    assert sleeps.delays[0] >= policy.base_delay_s * policy.rate_limit_factor * (1 - policy.jitter)
    assert sleeps.delays[1] <= policy.base_delay_s * 2 * (1 + policy.jitter)


async def test_non_network_errors_are_not_retried(
    live: tuple[CcxtMarketData, Recorder, Recorder], sleeps: SleepLog
) -> None:
    provider, rec, _ = live
    rec.fail_next(ccxt.ExchangeError('binanceusdm {"code":-1121,"msg":"Invalid symbol."}'), "/premiumIndex")
    with pytest.raises(MarketDataError) as info:
        await provider.funding("BTC")
    assert "binanceusdm" in info.value.user_message
    assert rec.count("/premiumIndex") == 1 and sleeps.delays == []
    rec.fail_next(ccxt.AuthenticationError("binanceusdm requires apiKey"), "/openInterestHist")
    with pytest.raises(MarketDataError):
        await provider.open_interest("BTC")
    assert rec.count("/openInterestHist") == 1 and sleeps.delays == []


async def test_fallback_exchange_serves_candles_when_primary_fails(
    live: tuple[CcxtMarketData, Recorder, Recorder], sleeps: SleepLog
) -> None:
    provider, rec, rec_fb = live
    for _ in range(MARKET_RETRY.attempts):
        rec.fail_next(ccxt.RequestTimeout("binanceusdm GET /fapi/v1/klines timed out"), "/fapi/v1/klines")
    frame = await provider.ohlcv("BTC", "1h", 24)
    assert frame.attrs["source"] == "bybit"
    assert rec.count("/fapi/v1/klines") == MARKET_RETRY.attempts and len(sleeps.delays) == MARKET_RETRY.attempts - 1
    assert rec_fb.count("/v5/market/kline") == 1
    # Both venues recorded the same market: the fallback's candles are the primary's.
    primary = CcxtMarketData(provider.exchange, clock=lambda: NOW_S)
    pd.testing.assert_frame_equal(frame, await primary.ohlcv("BTC", "1h", 24), check_like=False, check_freq=False)


async def test_fallback_on_exchange_error_without_retry(
    live: tuple[CcxtMarketData, Recorder, Recorder], sleeps: SleepLog
) -> None:
    provider, rec, rec_fb = live
    rec.fail_next(ccxt.ExchangeError("binanceusdm maintenance"), "/ticker/24hr")
    ticker = await provider.ticker("BTC")
    assert ticker.source == "bybit" and ticker.last == 95020.5
    assert (ticker.bid, ticker.ask) == (95020.4, 95020.5)
    assert rec.count("/ticker/24hr") == 1 and sleeps.delays == []
    assert rec_fb.count("/v5/market/tickers") == 1


async def test_both_exchanges_failing_gives_a_clear_error(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, rec, rec_fb = live
    rec.fail_next(ccxt.ExchangeError("down"), "/fapi/v1/klines")
    rec_fb.fail_next(ccxt.ExchangeError("down too"), "/v5/market/kline")
    with pytest.raises(MarketDataError) as info:
        await provider.ohlcv("ETH", "4h", 10)
    message = info.value.user_message
    assert "binanceusdm" in message and "bybit" in message


async def test_symbol_only_on_the_primary_skips_the_fallback(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, rec, rec_fb = live
    rec.fail_next(ccxt.ExchangeError("down"), "/ticker/24hr")
    # LINK is not listed in the bybit recording: the error is the primary's, not "unknown symbol".
    with pytest.raises(MarketDataError) as info:
        await provider.ticker("LINK")
    assert not isinstance(info.value, UnknownSymbolError)
    assert rec_fb.count("/v5/market/tickers") == 0


async def test_cached_frames_cannot_be_corrupted_by_callers(live: tuple[CcxtMarketData, Recorder, Recorder]) -> None:
    provider, rec, _ = live
    frame = await provider.ohlcv("BTC", "1h", 10)
    frame.loc[:, "close"] = -1.0
    again = await provider.ohlcv("BTC", "1h", 10)
    assert again["close"].min() > 0 and rec.count("/fapi/v1/klines") == 1
