"""Position alerts the monitor raises: stop near, target reached, trailing stop, R breach, funding impact."""

from __future__ import annotations

from typing import Any

from engine.alerts.models import Alert, ProposedAction
from engine.risk.context import RiskContext
from engine.risk.decision import Decision

STOP_NEAR_PCT = 2.0
R_BREACH = -1.0
FUNDING_IMPACT_RATE = 0.0005  # 0.05% per 8h against the position is worth telling


def _where(ctx: RiskContext, account_id: int) -> dict[str, Any]:
    """The position a critical alert is about, as shown (a press after it changed is refused by the executor)."""
    pos = ctx.position
    return {"account_id": account_id, "symbol": pos.symbol, "side": pos.side, "size": str(pos.size)}


def _exit(ctx: RiskContext, label: str) -> ProposedAction:
    base = ctx.position.symbol.split("/")[0]
    summary = f"EXIT 100%: close {ctx.position.size:g} of {ctx.position.size:g} {base} ({ctx.position.side})"
    return ProposedAction(label=label, action="EXIT_FULL", close_pct=100.0, summary=summary)


def _reduce(ctx: RiskContext, pct: float) -> ProposedAction:
    pos = ctx.position
    base = pos.symbol.split("/")[0]
    summary = f"REDUCE {pct:g}%: close {pos.size * pct / 100:g} of {pos.size:g} {base} ({pos.side})"
    return ProposedAction(label=f"Reduce {pct:g}%", action="REDUCE_SIZE", close_pct=pct, summary=summary)


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
                position=_where(ctx, account_id),
                actions=[_exit(ctx, "Exit 100%"), _reduce(ctx, 50.0)],
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
                position=_where(ctx, account_id),
                actions=[_exit(ctx, "Exit now")],
            )
        )
    return out
