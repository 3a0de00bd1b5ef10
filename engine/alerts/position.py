"""Position alerts the monitor raises: stop near, target reached, trailing stop, R breach, funding impact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.alerts.models import Alert, ProposedAction, Severity
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
    out: list[Alert] = []

    def add(
        condition: str,
        severity: Severity,
        headline: str,
        message: str,
        suggested: Sequence[str] = (),
        actions: Sequence[ProposedAction] = (),
    ) -> None:
        # Keyed by account, symbol, side and condition; an alert offering actions names the position they act on.
        out.append(
            Alert(
                key=f"{account_id}:{pos.symbol}:{pos.side}:{condition}",
                type="position",
                severity=severity,
                asset=pos.symbol,
                title=f"{pos.symbol} {pos.side}: {headline}",
                message=message,
                suggested_actions=list(suggested),
                position=_where(ctx, account_id) if actions else None,
                actions=list(actions),
            )
        )

    if pos.stop is not None:
        gap_pct = ctx.d * (m.price - pos.stop) / m.price * 100
        if 0 < gap_pct <= STOP_NEAR_PCT:
            message = f"Price {m.price:g} is {gap_pct:.2f}% from the stop {pos.stop:g}."
            add("stop_near", "warning", f"stop within {gap_pct:.2f}%", message, ["review the position", "close part"])
    if decision.rule in {"take_profit", "take_profit_final", "near_t1_leverage", "early_partial"}:
        suggested = [f"take profit ({decision.effective_close_pct:.0f}%)"]
        add(f"target:{pos.targets_hit}", "info", "take-profit", decision.reasoning, suggested)
    if decision.rule in {"trailing_stop", "guarding_line_trail"} and decision.new_stop is not None:
        headline = f"trailing stop to {decision.new_stop:g}"
        add(f"trail:{decision.new_stop:.6g}", "info", headline, decision.reasoning, ["move the stop"])
    r = ctx.r_multiple
    if r is not None and r <= R_BREACH:
        message = f"The position is at {r:.2f}R; the plan risked 1R."
        actions = [_exit(ctx, "Exit 100%"), _reduce(ctx, 50.0)]
        add("r_breach", "critical", f"loss beyond 1R ({r:.2f}R)", message, ["exit", "reduce"], actions)
    if m.funding_rate is not None and ctx.d * m.funding_rate >= FUNDING_IMPACT_RATE:
        per_day = pos.size * m.price * abs(m.funding_rate) * 3
        message = (
            f"At this rate the position pays about {per_day:,.2f} USDT a day. Funding alone is no reason "
            "to exit; weigh it against the plan."
        )
        add("funding", "warning", f"funding {m.funding_rate * 100:.3f}% per 8h against you", message)
    if decision.action == "EMERGENCY_EXIT":
        add("emergency", "critical", "emergency exit", decision.reasoning, ["exit now"], [_exit(ctx, "Exit now")])
    return out
