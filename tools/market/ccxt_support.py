"""ccxt plumbing for the live provider: building keyless exchanges and exchange-specific reads."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from tools.market.base import MarketDataError
from tools.market.features import window_seconds
from tools.numbers import precision_step, register_step, register_tick

# Only the perpetual markets are loaded: fewer requests at start-up and no spot/perp ambiguity.
_PERP_MARKET_TYPES: dict[str, dict[str, Any]] = {
    "bybit": {"fetchMarkets": {"types": ["linear"]}},
    "okx": {"fetchMarkets": {"types": ["swap"]}},
    "bitget": {"fetchMarkets": {"types": ["swap"]}, "defaultType": "swap"},
}
BINANCE_BOOK_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
PAGE = 1000


def make_exchange(exchange_id: str, sandbox: bool = False) -> ccxt_async.Exchange:
    """A keyless ccxt async exchange with rate limiting on and only perp markets loaded."""
    cls = getattr(ccxt_async, exchange_id, None)
    if cls is None:
        raise MarketDataError(f"ccxt has no exchange {exchange_id!r}.")
    exchange: ccxt_async.Exchange = cls({"enableRateLimit": True, "options": _PERP_MARKET_TYPES.get(exchange_id, {})})
    if sandbox:
        exchange.set_sandbox_mode(True)
    return exchange


def register_precisions(exchange: ccxt_async.Exchange) -> int:
    """Register the price tick and amount step (base units) of each USDT/USDC perpetual the exchange loaded, so
    prices and sizes everywhere are shown at the venue's precision; returns how many markets were registered.

    ccxt writes `precision` as steps (TICK_SIZE mode, most exchanges in 4.5) or as a count of decimals
    (DECIMAL_PLACES); amounts are in contracts, a contract being `contractSize` base units.
    """
    decimals = exchange.precisionMode == ccxt_async.DECIMAL_PLACES
    done = 0
    for symbol, market in (exchange.markets or {}).items():
        if not market.get("swap") or market.get("settle") not in ("USDT", "USDC") or not market.get("linear", True):
            continue  # one instrument per base: the product trades the linear perpetual (BTC/USDT:USDT)
        precision = market.get("precision") or {}
        contract = Decimal(str(market.get("contractSize") or 1))
        tick = precision_step(precision.get("price"), decimals)
        step = precision_step(precision.get("amount"), decimals)
        minimum = ((market.get("limits") or {}).get("amount") or {}).get("min")
        if tick is not None:
            register_tick(symbol, tick)
        if step is not None:
            register_step(symbol, step * contract, Decimal(str(minimum)) * contract if minimum else None)
        done += 1
    return done


async def binance_taker_volume(ex: ccxt_async.Exchange, sym: str, span_ms: int) -> tuple[float, float]:
    """(taker buy volume, total volume) over the window from raw klines (ccxt's parser drops the taker field)."""
    minutes = max(1, span_ms // 60_000)
    interval, per = next(
        ((i, m) for i, m in (("1m", 1), ("5m", 5), ("15m", 15), ("1h", 60)) if minutes / m <= 1000), ("4h", 240)
    )
    market = ex.market(sym)
    request = {"symbol": market["id"], "interval": interval, "limit": max(1, math.ceil(minutes / per))}
    rows = await (ex.fapiPublicGetKlines(request) if market.get("linear") else ex.publicGetKlines(request))
    buy = sum(float(r[9]) for r in rows)
    total = sum(float(r[5]) for r in rows)
    return buy, total


def timeframe_hours(text: str) -> float:
    """Hours in a ccxt interval string like '8h' or '1d'."""
    try:
        return window_seconds(text) / 3600
    except MarketDataError:
        return 8.0


def to_float(value: Any) -> float | None:
    """A float, or None for missing or malformed numbers (exchanges send both)."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
