"""What the monitor remembers: a cycle's plans, decisions and alerts, each handled condition, each approval request.

The plan's `handled` map is the memory of the once-per-condition policy: an executed condition is recorded after
its order, a proposed one in the same transaction as its approval request (never asked without being remembered).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts import Alert
from engine.monitor import policy
from engine.monitor.cycle import Item
from engine.monitor.notifier import summarise
from engine.monitor.policy import Step
from storage.models import Approval, AuditLog, PositionPlan, RiskDecision
from storage.repositories import approvals, audit
from storage.repositories import engine as engine_repo


async def record_cycle(
    sessions: async_sessionmaker[AsyncSession], items: list[Item], alerts: list[tuple[int, Alert]], now: datetime
) -> None:
    """New plans, decisions worth keeping and alert records of the whole cycle, in one transaction."""
    decisions = []
    async with sessions.begin() as session:
        for item in items:
            assert item.decision is not None
            if item.new_plan:
                item.plan.updated_at = now
                item.plan = await session.merge(item.plan)
            if policy.keep_decision(item.decision, first=item.new_plan):
                decisions.append(_decision_row(item, now))
        if decisions:
            await session.execute(insert(RiskDecision), decisions)
        if alerts:
            await session.execute(
                insert(AuditLog),
                [
                    {
                        "kind": "alert",
                        "user_id": user_id,
                        "ref": f"alert:{alert.key}",
                        "data": alert.model_dump(),
                        "created_at": now,
                    }
                    for user_id, alert in alerts
                ],
            )


def _decision_row(item: Item, now: datetime) -> dict[str, Any]:
    """A risk_decisions row: the decision with the price, ATR, rule and notes it was made on."""
    d, ctx = item.decision, item.ctx
    assert d is not None and ctx is not None
    return {
        "account_id": item.row.id,
        "symbol": ctx.position.symbol,
        "side": ctx.position.side,
        "action": d.action,
        "confidence": d.confidence,
        "reasoning": d.reasoning,
        "close_pct": d.close_pct,
        "new_stop": d.new_stop,
        "source": d.source,
        "created_at": now,
        "context": {
            "price": ctx.market.price,
            "atr": ctx.market.atr,
            "rule": d.rule,
            "notes": d.notes,
            "warnings": d.warnings,
        },
    }


async def record_outcome(
    sessions: async_sessionmaker[AsyncSession], plan: PositionPlan, step: Step, outcome: str
) -> None:
    """Remember an executed condition in the plan, with the target it took or the stop it set."""
    target, stop = policy.plan_effects(step.decision)
    async with sessions.begin() as session:
        await engine_repo.record_plan_action(
            session,
            plan.account_id,
            plan.symbol,
            plan.side,
            epoch=plan.epoch,
            key=step.key,
            outcome=outcome,
            target_taken=target,
            stop=stop,
        )


def proposal_intent(item: Item, step: Step) -> dict[str, Any]:
    """What an approval carries: the action on the position as shown, and what its execution records in the plan."""
    decision, position, plan = step.decision, item.position, item.plan
    target, stop = policy.plan_effects(decision)
    return {
        "symbol": position.symbol,
        "side": position.side.value,
        "action": decision.action,
        "close_pct": decision.close_pct,
        "new_stop": decision.new_stop,
        "account_id": item.row.id,
        # The position as shown: a press after it changed beyond the executor's tolerance is refused.
        "size": str(position.size),
        # What an approved execution records in the plan (engine.execution.proposals), so the condition is
        # not proposed again and a taken target counts.
        "plan": {"epoch": plan.epoch, "key": step.key, "target_taken": target, "stop": stop},
    }


async def record_proposal(
    sessions: async_sessionmaker[AsyncSession], item: Item, step: Step, *, ttl: timedelta, now: datetime
) -> Approval:
    """The approval request, its audit entry and the proposed condition in the plan, in one transaction."""
    decision, row, plan = step.decision, item.row, item.plan
    async with sessions.begin() as session:
        approval = await approvals.create_approval(
            session,
            owner_user_id=row.user_id,
            intent=proposal_intent(item, step),
            summary=summarise(item.position, decision),
            ttl=ttl,
            account_id=row.id,
            now=now,
        )
        await audit.record(
            session,
            "approval_requested",
            user_id=row.user_id,
            account_id=row.id,
            ref=approval.token,
            data={"decision": decision.model_dump(), "condition": step.key, "why": step.why},
        )
        # In the same transaction as the approval: a request is never made without being remembered.
        await engine_repo.record_plan_action(
            session, plan.account_id, plan.symbol, plan.side, epoch=plan.epoch, key=step.key, outcome="proposed"
        )
    return approval
