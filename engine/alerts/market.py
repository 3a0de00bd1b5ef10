"""Market alerts with the SPEC §6 thresholds, as pure functions of one symbol's snapshot.

Funding beyond ±0.1% per 8 h, open interest up more than 5% in 4 h, volume more than 3x its average, CVD
diverging from price; liquidations over $50M in an hour and whale transfers over $10M when those feeds are
configured (`engine.alerts.feeds`). A rule without its data this cycle is silent: "not available" never fires.
Keys carry no time: the cooldown per (rule, symbol, recipient) decides when the same condition may fire again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from engine.alerts.feeds import WhaleTransferLike
from engine.alerts.models import Alert, AlertType, Severity
from tools.market.features import cvd_from_candles

FUNDING_LIMIT = 0.001  # fraction per 8 h (0.1%)
OI_RISE_PCT = 5.0  # over 4 h
VOLUME_MULTIPLE = 3.0
VOLUME_LOOKBACK = 20  # closed candles the average is taken over
DIVERGENCE_BARS = 4  # closed candles of the snapshot's timeframe
DIVERGENCE_MOVE_PCT = 1.0  # price must move at least this much ...
DIVERGENCE_FLOW = 0.05  # ... while net flow ((buy - sell) / volume) leans at least this far the other way
LIQUIDATIONS_USD = 50_000_000.0  # in one hour
WHALE_USD = 10_000_000.0
CRITICAL_MULTIPLE = 3.0  # a reading three times past its threshold is critical


@dataclass(frozen=True)
class MarketSnapshot:
    """What one cycle knows about a symbol; None (or empty) where a source is not configured or failed."""

    symbol: str
    now: datetime
    timeframe: str = "1h"
    candles: pd.DataFrame | None = None  # closed candles only, oldest first
    funding_rate: float | None = None  # fraction per interval
    funding_interval_hours: float = 8.0
    oi_change_pct: float | None = None  # over 4 h
    liquidations_usd: float | None = None  # last hour
    whale_transfers: Sequence[WhaleTransferLike] = field(default_factory=tuple)


def _severity(value: float, threshold: float) -> Severity:
    return "critical" if abs(value) >= CRITICAL_MULTIPLE * abs(threshold) else "warning"


def _alert(
    rule: str, snap: MarketSnapshot, title: str, message: str, severity: Severity, kind: AlertType = "market"
) -> Alert:
    return Alert(
        key=f"market:{rule}:{snap.symbol}",
        type=kind,
        severity=severity,
        asset=snap.symbol,
        title=title,
        message=message,
    )


def base_of(symbol: str) -> str:
    """'BTC/USDT:USDT' → 'BTC'."""
    return symbol.split("/")[0]


def funding_alert(snap: MarketSnapshot) -> Alert | None:
    """Funding beyond ±0.1% per 8 h (rates of other intervals scaled to 8 h)."""
    if snap.funding_rate is None:
        return None
    per_8h = snap.funding_rate * 8.0 / (snap.funding_interval_hours or 8.0)
    if abs(per_8h) <= FUNDING_LIMIT:
        return None
    side = "longs pay shorts" if per_8h > 0 else "shorts pay longs"
    return _alert(
        "funding",
        snap,
        f"{base_of(snap.symbol)} funding {per_8h * 100:+.3f}% per 8h",
        f"Funding is beyond ±{FUNDING_LIMIT * 100:.1f}% per 8h ({side}): a crowded side. Funding alone is no "
        "reason to exit.",
        _severity(per_8h, FUNDING_LIMIT),
    )


def open_interest_alert(snap: MarketSnapshot) -> Alert | None:
    """Open interest up more than 5% in 4 h."""
    if snap.oi_change_pct is None or snap.oi_change_pct <= OI_RISE_PCT:
        return None
    return _alert(
        "oi",
        snap,
        f"{base_of(snap.symbol)} open interest +{snap.oi_change_pct:.1f}% in 4h",
        f"Open interest rose {snap.oi_change_pct:.1f}% in 4 hours (threshold {OI_RISE_PCT:g}%): new positions "
        "are piling in.",
        _severity(snap.oi_change_pct, OI_RISE_PCT),
    )


def volume_ratio(candles: pd.DataFrame | None, lookback: int = VOLUME_LOOKBACK) -> float | None:
    """The last closed candle's volume over the mean of the `lookback` before it (None without enough candles)."""
    if candles is None or len(candles) < lookback + 1:
        return None
    volume = candles["volume"].to_numpy()
    mean = float(volume[-lookback - 1 : -1].mean())
    return float(volume[-1]) / mean if mean > 0 else None


def volume_alert(snap: MarketSnapshot) -> Alert | None:
    """The last closed candle's volume more than 3x the average of the 20 before it."""
    ratio = volume_ratio(snap.candles)
    if ratio is None or ratio <= VOLUME_MULTIPLE or snap.candles is None:
        return None
    last = snap.candles.iloc[-1]
    when = snap.candles.index[-1]
    move = (float(last["close"]) / float(last["open"]) - 1.0) * 100 if float(last["open"]) else 0.0
    return _alert(
        "volume",
        snap,
        f"{base_of(snap.symbol)} volume {ratio:.1f}x its average",
        f"The {snap.timeframe} candle of {when:%Y-%m-%d %H:%M} UTC traded {float(last['volume']):,.0f} "
        f"({ratio:.1f}x the {VOLUME_LOOKBACK}-candle average), price {move:+.2f}% in the candle.",
        _severity(ratio, VOLUME_MULTIPLE),
    )


def divergence_alert(snap: MarketSnapshot) -> Alert | None:
    """Price up while net flow leans to selling (bearish divergence), or down while it leans to buying."""
    candles = snap.candles
    if candles is None or len(candles) < DIVERGENCE_BARS:
        return None
    window = candles.iloc[-DIVERGENCE_BARS:]
    first_open = float(window["open"].iloc[0])
    if first_open <= 0:
        return None
    move = (float(window["close"].iloc[-1]) / first_open - 1.0) * 100
    buy, sell = cvd_from_candles(window)
    total = buy + sell
    if total <= 0:
        return None
    flow = (buy - sell) / total
    if move >= DIVERGENCE_MOVE_PCT and flow <= -DIVERGENCE_FLOW:
        lean, what = "bearish", "rising on net selling"
    elif move <= -DIVERGENCE_MOVE_PCT and flow >= DIVERGENCE_FLOW:
        lean, what = "bullish", "falling on net buying"
    else:
        return None
    hours = DIVERGENCE_BARS
    return _alert(
        f"cvd_{lean}",
        snap,
        f"{base_of(snap.symbol)} CVD divergence ({lean})",
        f"Price {move:+.2f}% over the last {hours} {snap.timeframe} candles while the volume delta is "
        f"{flow * 100:+.0f}% of volume: {what} (CVD estimated from candles).",
        "warning",
        "technical",
    )


def liquidations_alert(snap: MarketSnapshot) -> Alert | None:
    """Liquidations over $50M in the last hour (only with a derivatives-data feed)."""
    if snap.liquidations_usd is None or snap.liquidations_usd <= LIQUIDATIONS_USD:
        return None
    return _alert(
        "liquidations",
        snap,
        f"{base_of(snap.symbol)} liquidations ${snap.liquidations_usd / 1e6:,.0f}M in 1h",
        f"${snap.liquidations_usd:,.0f} of positions were liquidated in the last hour (threshold "
        f"${LIQUIDATIONS_USD / 1e6:,.0f}M).",
        _severity(snap.liquidations_usd, LIQUIDATIONS_USD),
    )


def whale_alerts(snap: MarketSnapshot) -> list[Alert]:
    """One alert per whale transfer over $10M (only with a whale feed); each transfer is its own condition."""
    out: list[Alert] = []
    for t in snap.whale_transfers:
        if t.amount_usd <= WHALE_USD:
            continue
        lean = f" Leans {t.lean}." if t.lean else ""
        out.append(
            Alert(
                key=f"onchain:whale:{snap.symbol}:{t.id}",
                type="onchain",
                severity=_severity(t.amount_usd, WHALE_USD),
                asset=snap.symbol,
                title=f"{base_of(snap.symbol)} whale transfer ${t.amount_usd / 1e6:,.1f}M",
                message=f"${t.amount_usd:,.0f} moved from {t.from_owner} to {t.to_owner} at {t.at:%H:%M} UTC.{lean}",
            )
        )
    return out


SINGLE_RULES: tuple[Callable[[MarketSnapshot], Alert | None], ...] = (
    funding_alert,
    open_interest_alert,
    volume_alert,
    divergence_alert,
    liquidations_alert,
)


def market_alerts(snap: MarketSnapshot) -> list[Alert]:
    """Every market, technical and on-chain alert the snapshot triggers."""
    out = [a for rule in SINGLE_RULES if (a := rule(snap)) is not None]
    return out + whale_alerts(snap)
