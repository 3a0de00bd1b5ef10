"""What one monitor cycle carries between its phases: the positions in work, the state read at its start, its report."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from engine.execution.executor import ExecutionOutcome
from engine.risk.context import RiskContext
from engine.risk.decision import Decision
from storage.models import ExchangeAccount, PositionPlan
from tools.exchange.base import Account
from tools.exchange.errors import AccountError
from tools.exchange.models import Position
from tools.market.base import MarketDataError

log = logging.getLogger(__name__)
PlanKey = tuple[int, str, str]  # account id, symbol, side
PendingKey = tuple[int, str]  # account id, symbol


@dataclass
class CycleReport:
    """What one cycle did, for logs, metrics and tests."""

    positions: int = 0
    decisions: list[Decision] = field(default_factory=list)
    approvals: int = 0
    executions: list[ExecutionOutcome] = field(default_factory=list)
    alerts: int = 0
    errors: list[str] = field(default_factory=list)
    # One line per automated execution: what, why (the rule and its reason) and what came of it (placed, or the
    # guard or kill switch that refused it), so an operator watching the monitor is never left guessing.
    actions: list[str] = field(default_factory=list)


@dataclass
class Item:
    """One watched position through the cycle: its account, its plan, and (once evaluated) context and decision."""

    row: ExchangeAccount
    account: Account
    position: Position
    plan: PositionPlan
    new_plan: bool = False
    ctx: RiskContext | None = None
    decision: Decision | None = None


@dataclass
class CycleState:
    """What the cycle read at its start: plans, the last firing of each alert, and the actions awaiting approval."""

    plans: dict[PlanKey, PositionPlan]
    last_alerts: dict[str, datetime]
    pending: dict[PendingKey, set[str]]  # (account, symbol) → actions with a pending approval

    def pending_actions(self, account_id: int, symbol: str) -> set[str]:
        """The live set of actions awaiting approval for a symbol of an account (added to as proposals go out)."""
        return self.pending.setdefault((account_id, symbol), set())


def failed(report: CycleReport, what: str, exc: BaseException) -> None:
    """Record one part's failure in the report and the log; the cycle goes on with the other parts."""
    if isinstance(exc, AccountError | MarketDataError):
        report.errors.append(f"{what}: {exc.user_message}")
        log.warning("monitor: %s skipped: %s", what, exc.user_message)
    else:
        report.errors.append(f"{what}: {type(exc).__name__}: {exc}")
        log.error("monitor: %s failed", what, exc_info=exc)
