"""Live market data from public ccxt endpoints: cached, coalesced, retried, with a candle fallback exchange."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

import ccxt
import ccxt.async_support as ccxt_async
import pandas as pd

from storage.retry import RetryPolicy, retry_async
from tools.market.base import (
    BookImbalance,
    Cvd,
    Funding,
    LongShortRatio,
    MarketDataError,
    OpenInterest,
    Ticker,
    UnknownSymbolError,
)
from tools.market.cache import CoalescingCache
from tools.market.ccxt_support import (
    BINANCE_BOOK_LIMITS,
    PAGE,
    binance_taker_volume,
    make_exchange,
    register_precisions,
    timeframe_hours,
    to_float,
)
from tools.market.features import (
    book_imbalance,
    cvd_from_candles,
    cvd_from_trades,
    rows_to_arrays,
    timeframe_seconds,
    window_seconds,
)
from tools.market.provider_base import MarketDataBase
from tools.market.replay import ms_to_datetime
from tools.market.retry import MARKET_RETRY, is_rate_limit, is_retryable
from tools.market.symbols import normalise_symbol, resolve_symbol

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CacheTtl:
    """Freshness per kind of data, in seconds (SPEC §3: price 0.5 s, live candles 1 s)."""

    ticker: float = 0.5
    candles: float = 1.0
    book: float = 0.5
    trades: float = 1.0
    funding: float = 10.0
    open_interest: float = 10.0
    long_short: float = 60.0


class CcxtMarketData(MarketDataBase):
    """MarketData over ccxt public endpoints; the fallback exchange serves candles and prices on failure."""

    simulated = False

    def __init__(
        self,
        exchange: ccxt_async.Exchange,
        fallback: ccxt_async.Exchange | None = None,
        *,
        retry: RetryPolicy | None = None,
        ttl: CacheTtl | None = None,
        cache: CoalescingCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.exchange, self.fallback = exchange, fallback
        self.name = exchange.id
        self.retry = retry or MARKET_RETRY
        self.ttl = ttl or CacheTtl()
        self.cache = cache if cache is not None else CoalescingCache()
        self._clock = clock
        self._precisions: set[str] = set()  # exchanges whose ticks and steps are registered in tools.numbers

    @classmethod
    def from_ids(
        cls, exchange_id: str, fallback_id: str | None = None, *, sandbox: bool = False, **kwargs: Any
    ) -> CcxtMarketData:
        """Build from ccxt ids, e.g. CcxtMarketData.from_ids("binanceusdm", "bybit")."""
        fallback = make_exchange(fallback_id, sandbox) if fallback_id and fallback_id != exchange_id else None
        return cls(make_exchange(exchange_id, sandbox), fallback, **kwargs)

    async def _retried(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """`call` with NetworkError-family failures retried under this provider's policy; the rest raise at once."""
        return await retry_async(call, self.retry, retry_on=is_retryable, rate_limited=is_rate_limit, what=what)

    # -- symbols ----------------------------------------------------------------------------

    async def resolve(self, symbol: str, exchange: ccxt_async.Exchange | None = None) -> str:
        """The exchange's unified symbol for any spelling; UnknownSymbolError with close matches."""
        ex = exchange or self.exchange
        await self._retried(ex.load_markets, f"{ex.id} markets")
        if ex.id not in self._precisions:  # once per exchange: ccxt keeps the loaded markets
            register_precisions(ex)
            self._precisions.add(ex.id)
        return resolve_symbol(symbol, ex.symbols or [])

    # -- candles and price (with fallback) --------------------------------------------------

    async def ohlcv(self, symbol: str, timeframe: str, limit: int = 500) -> pd.DataFrame:
        """The last `limit` candles (the newest usually forming), cached for 1 s."""
        tf_ms = timeframe_seconds(timeframe) * 1000
        key = ("ohlcv", normalise_symbol(symbol), timeframe, limit)

        async def load() -> pd.DataFrame:
            async def fetch(ex: ccxt_async.Exchange, sym: str) -> pd.DataFrame:
                now = int(self._clock() * 1000)
                since = None if limit <= PAGE else (now // tf_ms - limit + 1) * tf_ms
                rows = await self._fetch_candles(ex, sym, timeframe, since, now, limit)
                frame = rows_to_arrays(rows[-limit:]).to_frame()
                forming = bool(len(frame)) and int(frame.index[-1].value // 1_000_000) + tf_ms > now
                return self.label(frame, sym, forming=forming, source=ex.id)

            return await self._with_fallback(f"{timeframe} candles", symbol, fetch)

        return (await self.cache.get(key, self.ttl.candles, load)).copy()

    async def ohlcv_range(self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Candles opening in [start, end); a range of closed candles is cached until evicted."""
        tf_ms = timeframe_seconds(timeframe) * 1000
        start_ms, end_ms = int(pd.Timestamp(start).value // 1_000_000), int(pd.Timestamp(end).value // 1_000_000)
        now = int(self._clock() * 1000)
        all_closed = end_ms <= (now // tf_ms) * tf_ms
        key = ("range", normalise_symbol(symbol), timeframe, start_ms, end_ms)

        async def load() -> pd.DataFrame:
            async def fetch(ex: ccxt_async.Exchange, sym: str) -> pd.DataFrame:
                count = max(1, math.ceil((end_ms - start_ms) / tf_ms))
                rows = await self._fetch_candles(ex, sym, timeframe, start_ms, end_ms, count)
                frame = rows_to_arrays([r for r in rows if start_ms <= r[0] < end_ms]).to_frame()
                return self.label(frame, sym, forming=not all_closed, source=ex.id)

            return await self._with_fallback(f"{timeframe} candles", symbol, fetch)

        return (await self.cache.get(key, None if all_closed else self.ttl.candles, load)).copy()

    async def _fetch_candles(
        self, ex: ccxt_async.Exchange, sym: str, timeframe: str, since: int | None, until: int, limit: int
    ) -> list[list[Any]]:
        if since is None:
            return list(await ex.fetch_ohlcv(sym, timeframe, limit=limit))
        tf_ms = timeframe_seconds(timeframe) * 1000
        rows: list[list[Any]] = []
        cursor = since
        while cursor < until and len(rows) < limit:
            batch = await ex.fetch_ohlcv(sym, timeframe, since=cursor, limit=min(PAGE, limit - len(rows)))
            if not batch or batch[-1][0] < cursor:
                break
            rows.extend(batch)
            cursor = int(batch[-1][0]) + tf_ms
        return rows

    async def ticker(self, symbol: str) -> Ticker:
        """Last price, 24h change and bid/ask, cached for 0.5 s; concurrent asks share one request."""

        async def load() -> Ticker:
            async def fetch(ex: ccxt_async.Exchange, sym: str) -> Ticker:
                raw = await ex.fetch_ticker(sym)
                bid, ask = raw.get("bid"), raw.get("ask")
                if (bid is None or ask is None) and ex.has.get("fetchBidsAsks") is True:
                    bid, ask = await self._bid_ask(ex, sym, bid, ask)
                last = raw.get("last") or raw.get("close")
                if last is None:
                    raise ccxt.BadResponse(f"{ex.id} ticker for {sym} has no last price")
                return Ticker(
                    **self.origin(sym, self._stamp(raw.get("timestamp")), source=ex.id),
                    last=float(last),
                    change_24h_pct=to_float(raw.get("percentage")),
                    bid=to_float(bid),
                    ask=to_float(ask),
                )

            return await self._with_fallback("price", symbol, fetch)

        return await self.cache.get(("ticker", normalise_symbol(symbol)), self.ttl.ticker, load)

    async def _bid_ask(self, ex: ccxt_async.Exchange, sym: str, bid: Any, ask: Any) -> tuple[Any, Any]:
        # Best effort: a ticker without a spread is still a good ticker.
        try:
            book = (await ex.fetch_bids_asks([sym])).get(sym) or {}
        except ccxt.BaseError as exc:
            log.info("%s bid/ask for %s unavailable: %s", ex.id, sym, exc)
            return bid, ask
        return book.get("bid", bid), book.get("ask", ask)

    async def _with_fallback(
        self, what: str, symbol: str, fetch: Callable[[ccxt_async.Exchange, str], Awaitable[T]]
    ) -> T:
        """Ask the configured exchange, then the fallback; NetworkErrors are retried on each first."""
        unknown: UnknownSymbolError | None = None
        failures: list[str] = []
        for ex in (self.exchange, self.fallback):
            if ex is None:
                continue
            try:
                sym = await self.resolve(symbol, ex)
                return await self._retried(partial(fetch, ex, sym), f"{ex.id} {what}")
            except UnknownSymbolError as exc:
                unknown = unknown or exc
            except ccxt.BaseError as exc:
                log.warning("%s %s for %s failed: %s: %s", ex.id, what, symbol, type(exc).__name__, exc)
                failures.append(f"{ex.id} ({type(exc).__name__})")
        if failures:
            raise MarketDataError(
                f"Could not get the {what} for {symbol}: {', '.join(failures)} failed. Try again shortly."
            )
        assert unknown is not None
        raise unknown

    # -- exchange-specific values (configured exchange only) --------------------------------

    async def _call(self, kind: str, symbol: str, ttl: float, fetch: Callable[[str], Awaitable[T]]) -> T:
        ex = self.exchange

        async def load() -> T:
            sym = await self.resolve(symbol, ex)
            try:
                return await self._retried(lambda: fetch(sym), f"{ex.id} {kind}")
            except ccxt.BadSymbol:
                raise UnknownSymbolError(symbol, []) from None
            except ccxt.NotSupported as exc:
                raise MarketDataError(f"{ex.id} does not publish {kind}.") from exc
            except ccxt.BaseError as exc:
                raise MarketDataError(f"Could not get {kind} for {sym} from {ex.id} ({type(exc).__name__}).") from exc

        return await self.cache.get((kind, normalise_symbol(symbol)), ttl, load)

    async def funding(self, symbol: str) -> Funding:
        """Current funding rate and next funding time."""

        async def fetch(sym: str) -> Funding:
            raw = await self.exchange.fetch_funding_rate(sym)
            interval = str(raw.get("interval") or "8h")
            hours = timeframe_hours(interval)
            next_ms = raw.get("nextFundingTimestamp") or raw.get("fundingTimestamp")
            return Funding(
                **self.origin(sym, self._stamp(raw.get("timestamp"))),
                rate=float(raw["fundingRate"]),
                next_time=ms_to_datetime(next_ms) if next_ms else None,
                interval_hours=hours,
            )

        return await self._call("funding", symbol, self.ttl.funding, fetch)

    async def open_interest(self, symbol: str, window_hours: float = 4.0) -> OpenInterest:
        """Open interest now and its change over the window (from the exchange's OI history)."""

        async def fetch(sym: str) -> OpenInterest:
            ex = self.exchange
            if ex.has.get("fetchOpenInterestHistory") is not True:
                raw = await ex.fetch_open_interest(sym)
                return self._oi(sym, raw, None, window_hours)
            period, step_h = ("5m", 1 / 12) if window_hours < 2 else ("1h", 1.0)
            steps = max(1, round(window_hours / step_h))
            history = await ex.fetch_open_interest_history(sym, period, limit=steps + 1)
            if not history:
                raise ccxt.BadResponse(f"{ex.id} returned no open interest for {sym}")
            old = history[-1 - steps] if len(history) > steps else None
            return self._oi(sym, history[-1], old, window_hours)

        return await self._call(f"open interest {window_hours}h", symbol, self.ttl.open_interest, fetch)

    def _oi(self, sym: str, raw: dict[str, Any], old: dict[str, Any] | None, window_hours: float) -> OpenInterest:
        value = to_float(raw.get("openInterestAmount"))
        if value is None:
            raise ccxt.BadResponse(f"{self.name} open interest for {sym} has no amount")
        change = None
        old_value = to_float(old.get("openInterestAmount")) if old else None
        if old_value:
            change = 100.0 * (value / old_value - 1.0)
        return OpenInterest(
            **self.origin(sym, self._stamp(raw.get("timestamp"))),
            value=value,
            value_usd=to_float(raw.get("openInterestValue")),
            change_pct=change,
            window_hours=window_hours,
        )

    async def book_imbalance(self, symbol: str, depth: int = 20) -> BookImbalance:
        """Imbalance of bid vs ask volume over the top `depth` levels."""

        async def fetch(sym: str) -> BookImbalance:
            limit = depth
            if self.exchange.id.startswith("binance"):
                limit = next((n for n in BINANCE_BOOK_LIMITS if n >= depth), BINANCE_BOOK_LIMITS[-1])
            book = await self.exchange.fetch_order_book(sym, limit)
            imbalance, bid, ask = book_imbalance(book["bids"], book["asks"], depth)
            return BookImbalance(
                **self.origin(sym, self._stamp(book.get("timestamp"))),
                imbalance=imbalance,
                bid_volume=bid,
                ask_volume=ask,
                depth=depth,
            )

        return await self._call(f"order book {depth}", symbol, self.ttl.book, fetch)

    async def cvd(self, symbol: str, window: str = "1h") -> Cvd:
        """CVD from taker flow (binance klines' taker volume, or recent trades); else candles, flagged."""
        span_ms = window_seconds(window) * 1000

        async def fetch(sym: str) -> Cvd:
            buy, sell, approximate = await self._taker_flow(sym, span_ms)
            return Cvd.of(self.origin(sym, self._stamp(None)), buy, sell, approximate=approximate, window=window)

        return await self._call(f"cvd {window}", symbol, self.ttl.trades, fetch)

    async def _taker_flow(self, sym: str, span_ms: int) -> tuple[float, float, bool]:
        """(buy volume, sell volume, approximate) over the last `span_ms` on the configured exchange."""
        ex, now = self.exchange, int(self._clock() * 1000)
        if ex.id in ("binanceusdm", "binance"):
            buy, total = await binance_taker_volume(ex, sym, span_ms)
            return buy, total - buy, False
        trades = await ex.fetch_trades(sym, limit=PAGE)
        if trades and int(trades[0]["timestamp"]) <= now - span_ms:
            buy, sell = cvd_from_trades([t for t in trades if int(t["timestamp"]) > now - span_ms])
            return buy, sell, False
        # Too busy a market for one page of trades to span the window: estimate from 1m candles.
        rows = await ex.fetch_ohlcv(sym, "1m", since=now - span_ms, limit=min(PAGE, span_ms // 60_000 + 1))
        buy, sell = cvd_from_candles(rows_to_arrays(rows).to_frame())
        return buy, sell, True

    async def long_short_ratio(self, symbol: str) -> LongShortRatio | None:
        """The exchange's published accounts long/short ratio, or None where it publishes none."""
        if self.exchange.has.get("fetchLongShortRatioHistory") is not True:
            return None

        async def fetch(sym: str) -> LongShortRatio | None:
            history = await self.exchange.fetch_long_short_ratio_history(sym, "5m", None, 1)
            ratio = to_float(history[-1].get("longShortRatio")) if history else None
            if ratio is None:
                return None
            return LongShortRatio(**self.origin(sym, self._stamp(history[-1].get("timestamp"))), ratio=ratio)

        return await self._call("long/short ratio", symbol, self.ttl.long_short, fetch)

    async def close(self) -> None:
        """Close the exchanges' HTTP sessions (concurrently: each waits a moment for aiohttp to settle)."""
        await asyncio.gather(*(ex.close() for ex in (self.exchange, self.fallback) if ex is not None))

    def _now(self, symbol: str) -> datetime:
        return self._stamp(None)

    def _stamp(self, ms: Any) -> datetime:
        """The exchange's own time of a value, or now where it sends none."""
        return ms_to_datetime(int(ms) if ms else int(self._clock() * 1000))
