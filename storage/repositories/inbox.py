"""Webhook inbox: each platform update stored once (unique update id) before it is answered, then processed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import InboxStatus, InboxUpdate
from storage.repositories._dml import rowcount, table_of
from storage.repositories._lease import claim_leased, renew_leases
from storage.types import utcnow


async def store(
    session: AsyncSession,
    *,
    platform: str,
    update_id: int,
    payload: dict[str, Any],
    worker: str,
    lease: timedelta,
    now: datetime | None = None,
) -> int | None:
    """Store an update claimed by `worker` for `lease`; its row id, or None when it was already stored (a repeat)."""
    now = now or utcnow()
    table = table_of(InboxUpdate)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(table)
        .values(
            platform=platform,
            update_id=update_id,
            payload=payload,
            status=InboxStatus.PENDING.value,
            claimed_by=worker,
            lease_until=now + lease,
            received_at=now,
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def claim_stale(
    session: AsyncSession, worker: str, *, platform: str, lease: timedelta, limit: int, now: datetime | None = None
) -> list[InboxUpdate]:
    """Claim pending updates whose lease expired (their worker died after answering), oldest first."""
    now = now or utcnow()
    free = (
        col(InboxUpdate.status) == InboxStatus.PENDING.value,
        col(InboxUpdate.platform) == platform,
        or_(col(InboxUpdate.lease_until).is_(None), col(InboxUpdate.lease_until) <= now),
    )
    return await claim_leased(session, InboxUpdate, free, worker=worker, lease=lease, limit=limit, now=now)


async def renew(
    session: AsyncSession, worker: str, *, platform: str, lease: timedelta, now: datetime | None = None
) -> int:
    """Extend the lease of every pending update `worker` holds (queued or being handled); returns how many."""
    now = now or utcnow()
    held = (
        col(InboxUpdate.claimed_by) == worker,
        col(InboxUpdate.platform) == platform,
        col(InboxUpdate.status) == InboxStatus.PENDING.value,
    )
    return await renew_leases(session, InboxUpdate, held, lease=lease, now=now)


async def mark_done(session: AsyncSession, row_id: int, now: datetime | None = None) -> None:
    """Record that the update was handled."""
    await session.execute(
        update(InboxUpdate)
        .where(col(InboxUpdate.id) == row_id)
        .values(status=InboxStatus.DONE.value, processed_at=now or utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def prune(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete handled updates received before `older_than` (Telegram retries for at most a day)."""
    result = await session.execute(
        delete(InboxUpdate).where(
            col(InboxUpdate.status) == InboxStatus.DONE.value,
            col(InboxUpdate.received_at) < older_than,
        )
    )
    return rowcount(result)
