"""Webhook inbox: each platform update stored once (unique update id) before it is answered, then processed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxStatus, InboxUpdate
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
    table = InboxUpdate.__table__  # type: ignore[attr-defined]
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
        select(InboxUpdate.id)  # type: ignore[call-overload]
        .where(
            InboxUpdate.status == InboxStatus.PENDING.value,
            InboxUpdate.platform == platform,
            or_(InboxUpdate.lease_until.is_(None), InboxUpdate.lease_until <= now),  # type: ignore[union-attr, operator]
        )
        .order_by(InboxUpdate.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (
        await session.scalars(
            update(InboxUpdate)
            .where(InboxUpdate.id.in_(free.scalar_subquery()))  # type: ignore[union-attr]
            .values(claimed_by=worker, lease_until=now + lease)
            .returning(InboxUpdate)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return sorted(rows, key=lambda r: r.id or 0)


async def renew(
    session: AsyncSession, worker: str, *, platform: str, lease: timedelta, now: datetime | None = None
) -> int:
    """Extend the lease of every pending update `worker` holds (queued or being handled); returns how many."""
    now = now or utcnow()
    result = await session.execute(
        update(InboxUpdate)
        .where(
            InboxUpdate.claimed_by == worker,
            InboxUpdate.platform == platform,
            InboxUpdate.status == InboxStatus.PENDING.value,
        )
        .values(lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def mark_done(session: AsyncSession, row_id: int, now: datetime | None = None) -> None:
    """Record that the update was handled."""
    await session.execute(
        update(InboxUpdate)
        .where(InboxUpdate.id == row_id)
        .values(status=InboxStatus.DONE.value, processed_at=now or utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def prune(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete handled updates received before `older_than` (Telegram retries for at most a day)."""
    result = await session.execute(
        delete(InboxUpdate).where(
            InboxUpdate.status == InboxStatus.DONE.value,
            InboxUpdate.received_at < older_than,  # type: ignore[operator]
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
