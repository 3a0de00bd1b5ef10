"""Alerts (SPEC §6) and the position alerts the monitor raises."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from engine.risk.context import RiskContext
from engine.risk.decision import Decision

AlertType = Literal["position", "market", "technical", "onchain"]
Severity = Literal["info", "warning", "critical"]

STOP_NEAR_PCT = 2.0
R_BREACH = -1.0
FUNDING_IMPACT_RATE = 0.0005  # 0.05% per 8h against the position is worth telling


class Alert(BaseModel):
    """One alert; `key` identifies the condition for deduplication (same key → same condition)."""

    key: str
    type: AlertType
    severity: Severity
    asset: str
    title: str
    message: str
    suggested_actions: list[str] = Field(default_factory=list)


def position_alerts(ctx: RiskContext, decision: Decision, account_id: int) -> list[Alert]:
    """Alerts about one position: stop within 2%, target reached, trailing stop, R breach, funding impact."""
    pos, m = ctx.position, ctx.market
    base = f"{account_id}:{pos.symbol}:{pos.side}"
    out: list[Alert] = []
    if pos.stop is not None:
        gap_pct = ctx.d * (m.price - pos.stop) / m.price * 100
        if 0 < gap_pct <= STOP_NEAR_PCT:
            out.append(
                Alert(
                    key=f"{base}:stop_near",
                    type="position",
                    severity="warning",
                    asset=pos.symbol,
                    title=f"{pos.symbol} {pos.side}: stop within {gap_pct:.2f}%",
                    message=f"Price {m.price:g} is {gap_pct:.2f}% from the stop {pos.stop:g}.",
                    suggested_actions=["review the position", "close part"],
                )
            )
    if decision.rule in {"take_profit", "take_profit_final", "near_t1_leverage", "early_partial"}:
        out.append(
            Alert(
                key=f"{base}:target:{pos.targets_hit}",
                type="position",
                severity="info",
                asset=pos.symbol,
                title=f"{pos.symbol} {pos.side}: take-profit",
                message=decision.reasoning,
                suggested_actions=[f"take profit ({decision.effective_close_pct:.0f}%)"],
            )
        )
    if decision.rule in {"trailing_stop", "guarding_line_trail"} and decision.new_stop is not None:
        out.append(
            Alert(
                key=f"{base}:trail:{decision.new_stop:.6g}",
                type="position",
                severity="info",
                asset=pos.symbol,
                title=f"{pos.symbol} {pos.side}: trailing stop to {decision.new_stop:g}",
                message=decision.reasoning,
                suggested_actions=["move the stop"],
            )
        )
    r = ctx.r_multiple
    if r is not None and r <= R_BREACH:
        out.append(
            Alert(
                key=f"{base}:r_breach",
                type="position",
                severity="critical",
                asset=pos.symbol,
                title=f"{pos.symbol} {pos.side}: loss beyond 1R ({r:.2f}R)",
                message=f"The position is at {r:.2f}R; the plan risked 1R.",
                suggested_actions=["exit", "reduce"],
            )
        )
    if m.funding_rate is not None and ctx.d * m.funding_rate >= FUNDING_IMPACT_RATE:
        notional = pos.size * m.price
        per_day = notional * abs(m.funding_rate) * 3
        out.append(
            Alert(
                key=f"{base}:funding",
                type="position",
                severity="warning",
                asset=pos.symbol,
                title=f"{pos.symbol} {pos.side}: funding {m.funding_rate * 100:.3f}% per 8h against you",
                message=f"At this rate the position pays about {per_day:,.2f} USDT a day. Funding alone is no reason "
                "to exit; weigh it against the plan.",
            )
        )
    if decision.action == "EMERGENCY_EXIT":
        out.append(
            Alert(
                key=f"{base}:emergency",
                type="position",
                severity="critical",
                asset=pos.symbol,
                title=f"{pos.symbol} {pos.side}: emergency exit",
                message=decision.reasoning,
                suggested_actions=["exit now"],
            )
        )
    return out
