"""Position size from capital, risk % and stop distance."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PositionSize(BaseModel):
    """How much to buy or sell so that hitting the stop loses `risk_amount`."""

    capital: float
    risk_pct: float
    risk_amount: float = Field(description="capital x risk %, the loss at the stop")
    entry: float
    stop: float
    stop_distance: float
    stop_distance_pct: float
    units: float = Field(description="base-asset quantity")
    notional: float = Field(description="units x entry, in quote currency")
    leverage_needed: float = Field(description="notional / capital; above the allowed leverage = capped")
    capped: bool = Field(description="true when the size was cut to respect max_leverage")


def position_size(
    capital: float, risk_pct: float, entry: float, stop: float, max_leverage: float | None = None
) -> PositionSize:
    """Units = capital x risk% / |entry - stop|, cut down when the notional would need > max_leverage."""
    if capital <= 0 or entry <= 0 or stop <= 0:
        raise ValueError("capital, entry and stop must be positive")
    if not 0 < risk_pct <= 100:
        raise ValueError("risk_pct must be in (0, 100]")
    dist = abs(entry - stop)
    if dist == 0:
        raise ValueError("the stop must differ from the entry")
    risk_amount = capital * risk_pct / 100.0
    units = risk_amount / dist
    capped = False
    if max_leverage is not None and units * entry > max_leverage * capital:
        units = max_leverage * capital / entry
        capped = True
    notional = units * entry
    return PositionSize(
        capital=capital,
        risk_pct=risk_pct,
        risk_amount=units * dist,
        entry=entry,
        stop=stop,
        stop_distance=dist,
        stop_distance_pct=100.0 * dist / entry,
        units=units,
        notional=notional,
        leverage_needed=notional / capital,
        capped=capped,
    )
