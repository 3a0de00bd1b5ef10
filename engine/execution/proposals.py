"""Carry out a risk-engine proposal (monitor, advise mode) after its owner approved it with a button."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import ExecutionOutcome, Executor, position_change
from engine.risk.decision import Decision
from storage.models import Approval, ApprovalStatus, ExchangeAccount
from storage.repositories import approvals as approvals_repo
from storage.repositories import audit
from storage.repositories import engine as engine_repo
from tools.exchange.base import Account

OpenAccount = Callable[[ExchangeAccount], Awaitable[Account]]
INTENT_PREFIX = "appr:"


def is_monitor_proposal(approval: Approval) -> bool:
    """True for approvals the position monitor created (their intent carries a risk action, not an order)."""
    return "action" in approval.intent and "kind" not in approval.intent


async def execute_proposal(
    executor: Executor,
    sessions: async_sessionmaker[AsyncSession],
    open_account: OpenAccount,
    approval: Approval,
) -> ExecutionOutcome:
    """Place a consumed monitor proposal once (intent id from the token), and record the result on the row."""
    intent_id = f"{INTENT_PREFIX}{approval.token}"
    intent: dict[str, Any] = approval.intent
    if approval.status != ApprovalStatus.CONSUMED.value:
        return ExecutionOutcome("refused", intent_id, message="this proposal was not confirmed")
    async with sessions() as session:
        row = await session.get(ExchangeAccount, intent.get("account_id") or approval.account_id)
    if row is None:
        return await _finish(sessions, approval, ExecutionOutcome("failed", intent_id, message="account removed"))
    account = await open_account(row)
    positions = [p for p in await account.positions(intent["symbol"]) if p.side.value == intent["side"]]
    if not positions:
        outcome = ExecutionOutcome("nothing_to_do", intent_id, message="the position is no longer open")
        return await _finish(sessions, approval, outcome)
    decision = Decision(
        action=intent["action"],
        confidence=1.0,
        reasoning=f"approved by its owner: {approval.summary}"[:500],
        close_pct=intent.get("close_pct"),
        new_stop=intent.get("new_stop"),
        rule="approved",
    )
    if intent.get("size") is not None:
        # What executes is what was shown: a position that changed since the proposal refuses the press.
        shown = positions[0].model_copy(update={"size": Decimal(str(intent["size"]))})
        changed = position_change(shown, positions[0], check_size=decision.closes)
        if changed is not None:
            async with sessions.begin() as session:
                await audit.record(
                    session,
                    "guard_refused",
                    user_id=row.user_id,
                    account_id=row.id,
                    ref=intent_id,
                    data={"action": intent["action"], "reasons": [changed]},
                )
            return await _finish(sessions, approval, ExecutionOutcome("refused", intent_id, [changed], changed))
    outcome = await executor.execute(
        row=row, account=account, position=positions[0], decision=decision, intent_id=intent_id, automated=False
    )
    if outcome.status in {"placed", "duplicate"} and isinstance(plan := intent.get("plan"), dict):
        # The monitor proposed this for one condition of the position: remember it was done (and count a
        # target taken), so the monitor neither asks again nor aims at the same target twice.
        async with sessions.begin() as session:
            await engine_repo.record_plan_action(
                session,
                row.id or 0,
                intent["symbol"],
                intent["side"],
                epoch=int(plan.get("epoch", -1)),
                key=str(plan.get("key", "")),
                outcome="placed",
                target_taken=bool(plan.get("target_taken")),
                stop=plan.get("stop"),
            )
    return await _finish(sessions, approval, outcome)


async def _finish(
    sessions: async_sessionmaker[AsyncSession], approval: Approval, outcome: ExecutionOutcome
) -> ExecutionOutcome:
    async with sessions.begin() as session:
        await approvals_repo.record_result(
            session,
            approval.token,
            {"status": outcome.status, "message": outcome.message, "intent_id": outcome.intent_id},
        )
    return outcome
