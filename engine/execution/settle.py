"""Settle orders an interrupted process left behind: pending executions and consumed approvals without an outcome.

A process killed between claiming an execution and finishing it leaves the row pending, and one killed between
consuming an approval and executing it leaves the approval consumed with no result. Each pending execution is
looked up on its account by the intent's client order id and finished as placed or not placed (unknown when the
account cannot be asked: it stays pending); each unsettled approval then takes the outcome of its execution.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import CHECKING, ExecutionOutcome, Executor
from engine.execution.proposals import INTENT_PREFIX, OpenAccount
from storage.models import Approval, ExchangeAccount, Execution
from storage.repositories import approvals as approvals_repo
from storage.repositories import engine as engine_repo

log = logging.getLogger(__name__)
LOOKUP_TIMEOUT_S = 30.0  # one slow exchange must not hold start-up: its rows stay pending (unknown)
INTERRUPTED = "Bastion stopped before this order reached the exchange"


@dataclass
class SettledApproval:
    """A consumed approval and what became of its order: placed, not_placed, failed or unknown."""

    approval: Approval
    status: str
    message: str = ""
    realised_pnl: float | None = None


async def settle_executions(
    executor: Executor, sessions: async_sessionmaker[AsyncSession], open_account: OpenAccount, before: datetime
) -> list[ExecutionOutcome]:
    """Look up every execution still pending since `before` by its client order id and finish it."""
    async with sessions() as session:
        pending = await engine_repo.pending_executions(session, before)
        rows = {r.id: r for r in [await session.get(ExchangeAccount, e.account_id) for e in pending] if r}
    outcomes = []
    for execution in pending:
        row = rows.get(execution.account_id)
        if row is None or row.id is None:
            continue
        outcomes.append(await _settle_one(executor, open_account, row, execution))
    return outcomes


async def _settle_one(
    executor: Executor, open_account: OpenAccount, row: ExchangeAccount, execution: Execution
) -> ExecutionOutcome:
    assert row.id is not None
    try:
        account = await open_account(row)
        # Under the account's lock: a placement of this process never races its own settlement.
        async with executor.locks.hold(row.id):
            return await asyncio.wait_for(executor.reconcile(row, account, execution), LOOKUP_TIMEOUT_S)
    except Exception as exc:
        log.warning("execution %s could not be settled now (%s)", execution.intent_id, type(exc).__name__)
        return ExecutionOutcome("unknown", execution.intent_id, message=CHECKING)


async def settle_approvals(
    sessions: async_sessionmaker[AsyncSession], before: datetime, since: datetime, token: str | None = None
) -> list[SettledApproval]:
    """The consumed approvals (decided in [since, before]; one `token`) without an outcome, each with its truth."""
    out = []
    async with sessions() as session:
        for approval in await approvals_repo.unsettled_approvals(session, before, since, token):
            execution = await engine_repo.get_execution(session, f"{INTENT_PREFIX}{approval.token}")
            out.append(_truth(approval, execution))
    return out


def _truth(approval: Approval, execution: Execution | None) -> SettledApproval:
    # No execution row: the process stopped before claiming it, and nothing is placed before the claim commits.
    if execution is None or execution.status == engine_repo.NOT_PLACED:
        return SettledApproval(approval, engine_repo.NOT_PLACED, INTERRUPTED)
    if execution.status == engine_repo.DONE:
        return SettledApproval(approval, "placed", realised_pnl=execution.realised_pnl)
    if execution.status == engine_repo.FAILED:
        return SettledApproval(approval, "failed", execution.error or "")
    return SettledApproval(approval, "unknown", CHECKING)
