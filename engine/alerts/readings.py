"""What a cycle reads about a symbol: the market snapshot for the built-in rules and the readings users' rules use.

Every source is optional and may fail: a failed or missing one is left out (None), and only the rules that need
it stay silent. Candles are cut to those closed at `now`, so a forming candle never fires a volume alert.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

import pandas as pd

from engine.alerts.feeds import LiquidationFeed, WhaleFeed
from engine.alerts.market import WHALE_USD, MarketSnapshot, volume_ratio
from tools.market.base import TIMEFRAME_SECONDS, MarketData
from tools.structure.profile import volume_profile

log = logging.getLogger(__name__)
CANDLES = 120  # candles per timeframe read: the volume average and the visible range of a profile
PROFILE_CANDLES = 120


async def closed_candles(market: MarketData, symbol: str, timeframe: str, now: datetime) -> pd.DataFrame | None:
    """Candles of `timeframe` closed at `now`, oldest first; None when the market has none."""
    try:
        frame = await market.ohlcv(symbol, timeframe, CANDLES + 1)
    except Exception as exc:
        log.info("alerts: no %s candles for %s: %s", timeframe, symbol, exc)
        return None
    if frame.empty:
        return None
    ends = frame.index + pd.Timedelta(seconds=TIMEFRAME_SECONDS[timeframe])
    closed = frame[ends <= pd.Timestamp(now)]
    return closed if not closed.empty else None


async def snapshot(
    market: MarketData,
    symbol: str,
    now: datetime,
    *,
    timeframe: str = "1h",
    liquidations: LiquidationFeed | None = None,
    whales: WhaleFeed | None = None,
    whale_since: timedelta = timedelta(hours=1),
) -> MarketSnapshot:
    """The snapshot of `symbol` at `now` from the market and the configured feeds."""
    funding_rate, interval = None, 8.0
    try:
        funding = await market.funding(symbol)
        funding_rate, interval = funding.rate, funding.interval_hours
    except Exception as exc:
        log.debug("alerts: no funding for %s: %s", symbol, exc)
    oi_change = None
    try:
        oi_change = (await market.open_interest(symbol, 4.0)).change_pct
    except Exception as exc:
        log.debug("alerts: no open interest for %s: %s", symbol, exc)
    liq = None
    if liquidations is not None:
        try:
            liq = await liquidations.liquidations_usd(symbol, 1.0)
        except Exception as exc:
            log.info("alerts: liquidations feed failed for %s: %s", symbol, exc)
    transfers: list = []
    if whales is not None:
        try:
            transfers = list(await whales.whale_transfers(symbol, now - whale_since, WHALE_USD))
        except Exception as exc:
            log.info("alerts: whale feed failed for %s: %s", symbol, exc)
    return MarketSnapshot(
        symbol=symbol,
        now=now,
        timeframe=timeframe,
        candles=await closed_candles(market, symbol, timeframe, now),
        funding_rate=funding_rate,
        funding_interval_hours=interval,
        oi_change_pct=oi_change,
        liquidations_usd=liq,
        whale_transfers=tuple(transfers),
    )


async def rule_readings(market: MarketData, symbol: str, needs: Iterable[str], now: datetime) -> dict[str, float]:
    """The readings users' rules on `symbol` compare (see `engine.alerts.rules.reading_key`), those available."""
    needs = set(needs)
    out: dict[str, float] = {}
    if needs & {"price", "change_24h"}:
        try:
            ticker = await market.ticker(symbol)
            out["price"] = ticker.last
            if ticker.change_24h_pct is not None:
                out["change_24h"] = ticker.change_24h_pct
        except Exception as exc:
            log.info("alerts: no price for %s: %s", symbol, exc)
    if "funding" in needs:
        try:
            f = await market.funding(symbol)
            out["funding"] = f.rate * 100 * 8.0 / (f.interval_hours or 8.0)
        except Exception as exc:
            log.debug("alerts: no funding for %s: %s", symbol, exc)
    if "oi_change" in needs:
        try:
            change = (await market.open_interest(symbol, 4.0)).change_pct
            if change is not None:
                out["oi_change"] = change
        except Exception as exc:
            log.debug("alerts: no open interest for %s: %s", symbol, exc)
    frames: dict[str, pd.DataFrame | None] = {}
    for key in sorted(needs):
        name, _, tf = key.partition(":")
        if not tf:
            continue
        if tf not in frames:
            frames[tf] = await closed_candles(market, symbol, tf, now)
        candles = frames[tf]
        if candles is None:
            continue
        if name == "volume_ratio":
            if (ratio := volume_ratio(candles)) is not None:
                out[key] = ratio
        else:
            seen = candles.iloc[-PROFILE_CANDLES:]
            profile = volume_profile(
                seen["high"].to_numpy(), seen["low"].to_numpy(), seen["close"].to_numpy(), seen["volume"].to_numpy()
            )
            out[key] = {"poc": profile.poc, "vah": profile.vah, "val": profile.val}[name]
    return out
