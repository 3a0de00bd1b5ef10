"""Report and scan subscriptions of chats: one per (platform, chat, kind); the slot they last received."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Outbox, OutboxStatus, ReportSubscription
from storage.repositories._dml import rowcount, table_of
from storage.types import utcnow


async def get_subscription(session: AsyncSession, platform: str, chat_ref: str, kind: str) -> ReportSubscription | None:
    """The chat's subscription of `kind` (report | scan)."""
    stmt = select(ReportSubscription).where(
        col(ReportSubscription.platform) == platform,
        col(ReportSubscription.chat_ref) == chat_ref,
        col(ReportSubscription.kind) == kind,
    )
    return (await session.scalars(stmt)).first()


async def upsert_subscription(
    session: AsyncSession, platform: str, chat_ref: str, kind: str, values: dict[str, Any]
) -> ReportSubscription:
    """Create the chat's subscription of `kind` or update it with `values` (under a row lock when it exists)."""
    stmt = (
        select(ReportSubscription)
        .where(
            col(ReportSubscription.platform) == platform,
            col(ReportSubscription.chat_ref) == chat_ref,
            col(ReportSubscription.kind) == kind,
        )
        .with_for_update()
    )
    row = (await session.scalars(stmt)).first()
    now = utcnow()
    if row is None:
        row = ReportSubscription(platform=platform, chat_ref=chat_ref, kind=kind, created_at=now, **values)
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    row.updated_at = now
    await session.flush()
    return row


async def chat_subscriptions(session: AsyncSession, platform: str, chat_ref: str) -> list[ReportSubscription]:
    """Every subscription of one chat."""
    stmt = (
        select(ReportSubscription)
        .where(col(ReportSubscription.platform) == platform, col(ReportSubscription.chat_ref) == chat_ref)
        .order_by(col(ReportSubscription.kind))
    )
    return list((await session.scalars(stmt)).all())


async def delete_subscription(session: AsyncSession, row: ReportSubscription) -> None:
    """Remove a subscription."""
    await session.delete(row)
    await session.flush()


async def enabled_subscriptions(session: AsyncSession, platforms: list[str]) -> list[ReportSubscription]:
    """Every enabled subscription on the platforms that can be delivered to, oldest first."""
    stmt = (
        select(ReportSubscription)
        .where(col(ReportSubscription.enabled).is_(True), col(ReportSubscription.platform).in_(platforms))
        .order_by(col(ReportSubscription.id))
    )
    return list((await session.scalars(stmt)).all())


async def queue_rows(session: AsyncSession, rows: list[dict[str, Any]], now: datetime) -> int:
    """Queue many outbox rows in one statement, skipping those whose dedup key is already queued; returns how
    many were new. Each row: platform, recipient, payload, dedup_key."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = [
        {**r, "user_id": None, "status": OutboxStatus.PENDING.value, "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for r in rows
    ]  # fmt: skip
    result = await session.execute(insert(table_of(Outbox)).values(values).on_conflict_do_nothing())
    return rowcount(result)


async def advance_slots(session: AsyncSession, sub_ids: list[int], slot: datetime) -> int:
    """`advance_slot` for several subscriptions that share one slot; returns how many moved."""
    if not sub_ids:
        return 0
    result = await session.execute(
        update(ReportSubscription)
        .where(
            col(ReportSubscription.id).in_(sub_ids),
            or_(col(ReportSubscription.last_slot).is_(None), col(ReportSubscription.last_slot) < slot),
        )
        .values(last_slot=slot, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def advance_slot(session: AsyncSession, sub_id: int, slot: datetime) -> bool:
    """Record `slot` as delivered unless a later (or the same) one already is; False when it was."""
    result = await session.execute(
        update(ReportSubscription)
        .where(
            col(ReportSubscription.id) == sub_id,
            or_(col(ReportSubscription.last_slot).is_(None), col(ReportSubscription.last_slot) < slot),
        )
        .values(last_slot=slot, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))
