"""Market readings around the structure: derivatives, order flow and whale flows, each optional."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import pandas as pd

from engine.reports.body import Derivatives, Whale
from tools.market.base import MarketData, MarketDataError
from tools.structure.score import DerivativesInputs, OnChainInputs, OrderFlowInputs

log = logging.getLogger(__name__)
T = TypeVar("T")
VOLUME_BARS = 20  # the last bar's volume is compared with the mean of this many before it


class WhaleFeed(Protocol):
    """A premium on-chain provider (tools.market.providers.PremiumData): whale, exchange and stablecoin flows."""

    async def onchain_inputs(self, symbol: str) -> OnChainInputs:
        """Current flows in USD; all None when the feed cannot answer (or raise MarketDataError)."""
        ...


@dataclass(frozen=True)
class MarketInputs:
    """What the report shows and what the MCF score reads, from one round of provider calls."""

    derivatives: Derivatives
    whale: Whale
    derivatives_in: DerivativesInputs
    order_flow_in: OrderFlowInputs
    onchain_in: OnChainInputs | None


async def optional(call: Awaitable[T]) -> T | None:
    """The reading, or None when the provider has none (never invented)."""
    try:
        return await call
    except MarketDataError as exc:
        log.debug("optional market reading unavailable: %s", exc.user_message)
        return None


def _lean(oc: OnChainInputs) -> str | None:
    # SPEC whale heuristics: coins leaving exchanges and mints lean bullish, inflows and burns bearish.
    votes = [
        0 if oc.whale_net_flow is None else (oc.whale_net_flow > 0) - (oc.whale_net_flow < 0),
        0 if oc.exchange_net_flow is None else (oc.exchange_net_flow < 0) - (oc.exchange_net_flow > 0),
        0 if oc.stablecoin_net_mint is None else (oc.stablecoin_net_mint > 0) - (oc.stablecoin_net_mint < 0),
    ]
    total = sum(votes)
    return "bullish" if total > 0 else "bearish" if total < 0 else "neutral"


def volume_ratio(frame: pd.DataFrame) -> float | None:
    """Last closed bar's volume over the mean of the `VOLUME_BARS` before it."""
    if len(frame) <= VOLUME_BARS:
        return None
    vol = frame["volume"].to_numpy()
    mean = float(vol[-VOLUME_BARS - 1 : -1].mean())
    return float(vol[-1]) / mean if mean > 0 else None


def price_change_pct(frame: pd.DataFrame, hours: float) -> float | None:
    """Close-to-close change over the last `hours` of a closed-candle frame."""
    if len(frame) < 2:
        return None
    start = frame.index[-1] - pd.Timedelta(hours=hours)
    before = frame[frame.index <= start]
    if len(before) == 0:
        return None
    first = float(before["close"].iloc[-1])
    return 100.0 * (float(frame["close"].iloc[-1]) / first - 1.0) if first > 0 else None


async def market_inputs(md: MarketData, symbol: str, frame: pd.DataFrame, whales: WhaleFeed | None) -> MarketInputs:
    """Funding, open interest, long/short, CVD, book and whale flows of `symbol`; `frame` = closed candles."""
    funding, oi, ls, cvd, book = await asyncio.gather(
        optional(md.funding(symbol)),
        optional(md.open_interest(symbol)),
        optional(md.long_short_ratio(symbol)),
        optional(md.cvd(symbol, "4h")),
        optional(md.book_imbalance(symbol)),
    )
    onchain = await optional(whales.onchain_inputs(symbol)) if whales is not None else None
    if onchain is not None and not any(v is not None for v in onchain.model_dump().values()):
        onchain = None  # the feed had nothing to say: "not available", not three zeros
    funding_8h = funding.rate * 8 / funding.interval_hours if funding is not None else None
    window = oi.window_hours if oi is not None else 4.0
    move = price_change_pct(frame, window)
    deriv = Derivatives(
        funding_pct_8h=None if funding_8h is None else round(100 * funding_8h, 4),
        oi_change_pct=None if oi is None or oi.change_pct is None else round(oi.change_pct, 2),
        oi_usd=None if oi is None else oi.value_usd,
        oi_window_hours=None if oi is None else oi.window_hours,
        long_short_ratio=None if ls is None else round(ls.ratio, 3),
    )
    divergence = None
    if cvd is not None and move is not None:
        # Price falling while buyers dominate is a bullish divergence, and the mirror a bearish one.
        divergence = 1 if move < 0 < cvd.cvd else -1 if cvd.cvd < 0 < move else 0
    whale = Whale()
    if onchain is not None:
        whale = Whale(
            available=True,
            whale_net_flow_usd=onchain.whale_net_flow,
            exchange_net_flow_usd=onchain.exchange_net_flow,
            stablecoin_net_mint_usd=onchain.stablecoin_net_mint,
            lean=_lean(onchain),  # type: ignore[arg-type]
        )
    return MarketInputs(
        derivatives=deriv,
        whale=whale,
        derivatives_in=DerivativesInputs(
            funding_rate=funding_8h,
            oi_change_pct=None if oi is None else oi.change_pct,
            price_change_pct=move,
            long_short_ratio=None if ls is None else ls.ratio,
        ),
        order_flow_in=OrderFlowInputs(
            cvd_divergence=divergence,  # type: ignore[arg-type]
            volume_ratio=volume_ratio(frame),
            book_imbalance=None if book is None else max(-1.0, min(1.0, book.imbalance)),
        ),
        onchain_in=onchain,
    )
