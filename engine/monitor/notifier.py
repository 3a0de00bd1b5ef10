"""How the monitor reaches people: the texts it shows (a proposal's summary, a cycle's action lines) and the
`Notifier` the bots implement; tests use the recording one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from engine.alerts import Alert
from engine.execution.executor import ExecutionOutcome
from engine.risk.decision import Decision
from storage.models import Approval
from tools.exchange.models import Position, qty_text
from tools.numbers import price_text, size_text, step_of


def summarise(position: Position, decision: Decision) -> str:
    """The exact action text a person approves, in absolute sizes: 'REDUCE 50%: close 5 of 10 SOL of …'."""
    pct = decision.effective_close_pct
    stop = price_text(decision.new_stop, position.symbol) if decision.new_stop else None  # at the tick, no "128852.0"
    labels = {
        "TP_PARTIAL": f"TAKE PROFIT {pct:g}%",
        "REDUCE_SIZE": f"REDUCE {pct:g}%",
        "TP_FULL": "TAKE PROFIT 100%",
        "EXIT_FULL": "EXIT 100%",
        "EMERGENCY_EXIT": "EMERGENCY EXIT 100%",
        "MOVE_STOP_BE": f"MOVE STOP to breakeven {stop}" if stop else "MOVE STOP to breakeven",
        "TRAIL_STOP": f"TRAIL STOP to {stop}" if stop else "TRAIL STOP",
        "ADJUST_STOP": f"SET STOP to {stop}" if stop else "ADJUST STOP",
    }
    what = labels.get(decision.action, decision.action)
    base = position.symbol.split("/")[0]
    size = qty_text(position.size)
    if decision.closes:
        # What a venue can place: the share rounded down to the instrument's step, written at that step.
        step = step_of(position.symbol)
        share = position.size * Decimal(str(pct)) / 100
        amount = size_text((share / step).to_integral_value(rounding=ROUND_DOWN) * step, symbol=position.symbol)
        held = f"close {amount} of {size} {base}"
    else:
        held = f"{size} {base} held"
    return f"{what} of {position.symbol} {position.side.value} ({held}): {decision.reasoning}"


def explain(position: Position, decision: Decision, outcome: ExecutionOutcome) -> str:
    """One line of the cycle summary for an automated action: what, why, and what came of it.

    "SOL/USDT:USDT long: EXIT_FULL (hard_stop: …) → placed" or "… → refused: kill switch engaged".
    """
    why = f"{decision.rule}: {decision.reasoning}" if decision.rule else decision.reasoning
    result = outcome.status
    if outcome.reasons or outcome.message:
        result += ": " + ("; ".join(outcome.reasons) or outcome.message)
    return f"{position.symbol} {position.side.value}: {decision.action} ({why[:160]}) → {result}"


class Notifier(Protocol):
    """Delivers alerts and approval requests to a user."""

    async def send_alert(self, user_id: int, alert: Alert) -> None:
        """Tell the user about a condition."""
        ...

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Show the exact action with [Approve] [Reject] buttons whose payload is the approval token."""
        ...


@dataclass
class RecordingNotifier:
    """Keeps everything it was asked to deliver (tests, the console)."""

    alerts: list[tuple[int, Alert]] = field(default_factory=list)
    approvals: list[tuple[int, Approval, Decision]] = field(default_factory=list)

    async def send_alert(self, user_id: int, alert: Alert) -> None:
        """Record the alert."""
        self.alerts.append((user_id, alert))

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Record the approval request."""
        self.approvals.append((user_id, approval, decision))


@dataclass
class PrintingNotifier:
    """Writes alerts and approval requests to a text stream (the operator's terminal)."""

    write: Callable[[str], None]
    # With the database, users are printed as people name them (telegram:123, console:local), not by row id.
    sessions: Any = None

    async def _who(self, user_id: int) -> str:
        if self.sessions is None:
            return f"user {user_id}"
        from storage.repositories.users import user_refs

        async with self.sessions() as session:
            return (await user_refs(session, [user_id])).get(user_id, f"user {user_id}")

    async def send_alert(self, user_id: int, alert: Alert) -> None:
        """Print the alert."""
        self.write(f"[{alert.severity.upper()}] {await self._who(user_id)}: {alert.title} — {alert.message}")

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Print the proposal with its token (approve it from a channel, or let it expire)."""
        self.write(
            f"[PROPOSAL] {await self._who(user_id)}: {approval.summary} (token {approval.token[:6]}…, "
            f"expires {approval.expires_at:%H:%M:%S} UTC)"
        )
