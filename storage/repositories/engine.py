"""Engine state: kill switches, account modes, execution records (idempotency, guard counters), position plans."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.errors import NotFoundError
from storage.models import AccountMode, EngineFlag, ExchangeAccount, Execution, PositionPlan
from storage.repositories._dml import rowcount, table_of
from storage.repositories._upsert import insert_ignore
from storage.repositories.users import user_refs
from storage.types import utcnow

GLOBAL = "global"
# Execution statuses: claimed and maybe at the exchange, finished with an order, failed, or settled after an
# interruption as never having reached the exchange (such an intent may be claimed and placed again).
PENDING, DONE, FAILED, NOT_PLACED = "pending", "done", "failed", "not_placed"


def user_scope(user_id: int) -> str:
    """Kill-switch scope of one user."""
    return f"user:{user_id}"


async def scope_names(session: AsyncSession, scopes: Iterable[str]) -> dict[str, str]:
    """Each kill-switch scope as people name it: "global", "telegram:42" for "user:5" (never the row id)."""
    wanted = list(scopes)
    owners = {s: int(s[5:]) for s in wanted if s.startswith("user:") and s[5:].isdigit()}
    refs = await user_refs(session, owners.values())
    return {s: refs.get(owners[s], s) if s in owners else s for s in wanted}


async def set_kill_switch(session: AsyncSession, scope: str, killed: bool, reason: str | None = None) -> None:
    """Engage or release a kill switch (global or per user); persisted, so it survives restarts."""
    flag = await session.get(EngineFlag, scope)
    if flag is None:
        session.add(EngineFlag(scope=scope, killed=killed, reason=reason, updated_at=utcnow()))
    else:
        flag.killed, flag.reason, flag.updated_at = killed, reason, utcnow()
    await session.flush()


async def kill_switches(session: AsyncSession, user_id: int | None = None) -> list[EngineFlag]:
    """Engaged kill switches that apply to `user_id` (the global one always applies)."""
    scopes = [GLOBAL] + ([user_scope(user_id)] if user_id is not None else [])
    stmt = select(EngineFlag).where(col(EngineFlag.scope).in_(scopes), col(EngineFlag.killed).is_(True))
    return list((await session.scalars(stmt)).all())


async def set_account_mode(
    session: AsyncSession, account_id: int, *, mode: AccountMode | None = None, armed: bool | None = None
) -> ExchangeAccount:
    """Change an account's mode (off/advise/auto) and/or arm it (armed = not read-only)."""
    account = await session.get(ExchangeAccount, account_id)
    if account is None:
        raise NotFoundError(f"no exchange account with id {account_id}")
    if mode is not None:
        account.mode = mode.value
    if armed is not None:
        account.read_only = not armed
    account.updated_at = utcnow()
    await session.flush()
    return account


async def accounts_in_modes(session: AsyncSession, modes: tuple[AccountMode, ...]) -> list[ExchangeAccount]:
    """Accounts the monitor must watch."""
    stmt = select(ExchangeAccount).where(col(ExchangeAccount.mode).in_([m.value for m in modes]))
    return list((await session.scalars(stmt.order_by(col(ExchangeAccount.id)))).all())


async def claim_execution(session: AsyncSession, **values: Any) -> bool:
    """Claim `intent_id` as pending; False when it is already claimed (idempotency).

    An execution settled as `not_placed` (interrupted before it reached the exchange) is claimed again by one
    conditional UPDATE, so a retry of the same intent places it once and two retries never both win.
    """
    row = {"status": PENDING, "created_at": utcnow(), "automated": False, "intent": {}} | values
    if await insert_ignore(session, table_of(Execution), row):
        return True
    fresh = {k: v for k, v in row.items() if k not in ("intent_id", "status")}
    result = await session.execute(
        update(Execution)
        .where(col(Execution.intent_id) == row["intent_id"], col(Execution.status) == NOT_PLACED)
        .values(status=PENDING, result=None, error=None, finished_at=None, **fresh)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


async def pending_executions(session: AsyncSession, before: datetime) -> list[Execution]:
    """Executions still pending that were claimed at or before `before` (an interrupted process left them)."""
    stmt = select(Execution).where(col(Execution.status) == PENDING, col(Execution.created_at) <= before)
    return list((await session.scalars(stmt.order_by(col(Execution.id)))).all())


async def get_execution(session: AsyncSession, intent_id: str) -> Execution | None:
    """The execution record of an intent."""
    return (await session.scalars(select(Execution).where(col(Execution.intent_id) == intent_id))).first()


async def finish_execution(
    session: AsyncSession,
    intent_id: str,
    *,
    status: str,
    result: dict[str, Any] | None = None,
    realised_pnl: float | None = None,
    error: str | None = None,
    only_pending: bool = False,
) -> bool:
    """Record how an execution ended (with `only_pending`, only if nobody finished it meanwhile); True if written."""
    stmt = update(Execution).where(col(Execution.intent_id) == intent_id)
    if only_pending:
        stmt = stmt.where(col(Execution.status) == PENDING)
    done = await session.execute(
        stmt.values(
            status=status, result=result, realised_pnl=realised_pnl, error=error, finished_at=utcnow()
        ).execution_options(synchronize_session=False)
    )
    return bool(rowcount(done))


async def automated_actions_since(session: AsyncSession, account_id: int, since: datetime) -> int:
    """How many automated executions (not failed) the account had since `since`."""
    stmt = select(func.count()).where(
        col(Execution.account_id) == account_id,
        col(Execution.automated).is_(True),
        col(Execution.status).notin_([FAILED, NOT_PLACED]),
        col(Execution.created_at) >= since,
    )
    return int((await session.execute(stmt)).scalar_one())


async def realised_pnl_since(session: AsyncSession, account_id: int, since: datetime) -> float:
    """Sum of realised PnL of the account's executions since `since` (negative = loss)."""
    stmt = select(func.coalesce(func.sum(col(Execution.realised_pnl)), 0.0)).where(
        col(Execution.account_id) == account_id, col(Execution.created_at) >= since
    )
    # COALESCE never yields NULL, but the sum's type keeps the column's "float | None".
    return float((await session.execute(stmt)).scalar_one() or 0.0)


async def get_plan(session: AsyncSession, account_id: int, symbol: str, side: str) -> PositionPlan | None:
    """The stored plan of a position."""
    stmt = select(PositionPlan).where(
        col(PositionPlan.account_id) == account_id, col(PositionPlan.symbol) == symbol, col(PositionPlan.side) == side
    )
    return (await session.scalars(stmt)).first()


async def save_plan(session: AsyncSession, plan: PositionPlan) -> PositionPlan:
    """Insert or update a plan."""
    plan.updated_at = utcnow()
    session.add(plan)
    await session.flush()
    return plan


MAX_HANDLED = 64  # conditions remembered per position epoch; trailing stops add one per step, the oldest go first


async def record_plan_action(
    session: AsyncSession,
    account_id: int,
    symbol: str,
    side: str,
    *,
    epoch: int,
    key: str,
    outcome: str,
    target_taken: bool = False,
    stop: float | None = None,
) -> bool:
    """Remember that condition `key` of the position's epoch was handled (`outcome`: placed, proposed, ...).

    A placed take-profit counts its target and a placed stop becomes the stop the engine watches, in the same
    write, so a record is never half done. Recording the same outcome twice changes nothing (a retried cycle
    never counts a target twice). False when the plan is gone or belongs to a newer position (epoch moved on).
    """
    stmt = (
        select(PositionPlan)
        .where(
            col(PositionPlan.account_id) == account_id,
            col(PositionPlan.symbol) == symbol,
            col(PositionPlan.side) == side,
        )
        .with_for_update()
    )
    plan = (await session.scalars(stmt)).first()
    if plan is None or plan.epoch != epoch:
        return False
    if plan.handled.get(key) == outcome:
        return True
    handled = {k: v for k, v in plan.handled.items() if k != key}
    handled[key] = outcome
    plan.handled = dict(list(handled.items())[-MAX_HANDLED:])  # a new dict: JSON columns track assignment only
    if outcome == "placed":
        plan.targets_hit += int(target_taken)
        if stop is not None:
            plan.stop = stop
    await save_plan(session, plan)
    return True
