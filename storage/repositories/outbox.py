"""Outbox: messages waiting for delivery, deduplicated, retried with backoff, surviving restarts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Outbox, OutboxStatus
from storage.repositories._upsert import insert_ignore
from storage.types import utcnow


async def enqueue(
    session: AsyncSession,
    *,
    platform: str,
    recipient: str,
    payload: dict[str, Any],
    dedup_key: str | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue a message; False when a row with the same dedup key already exists (nothing queued)."""
    now = now or utcnow()
    return await insert_ignore(
        session,
        Outbox.__table__,
        {
            "platform": platform,
            "recipient": recipient,
            "user_id": user_id,
            "payload": payload,
            "dedup_key": dedup_key,
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )


async def due(
    session: AsyncSession, *, platform: str | None = None, now: datetime | None = None, limit: int = 100
) -> list[Outbox]:
    """Pending rows whose next attempt time has come, oldest first (keeps per-chat order)."""
    now = now or utcnow()
    stmt = (
        select(Outbox)
        .where(Outbox.status == OutboxStatus.PENDING.value, Outbox.next_attempt_at <= now)
        .order_by(Outbox.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    if platform is not None:
        stmt = stmt.where(Outbox.platform == platform)
    return list((await session.scalars(stmt)).all())


async def mark_sent(session: AsyncSession, row_id: int, now: datetime | None = None) -> None:
    """Record a successful delivery."""
    await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id)
        .values(status=OutboxStatus.SENT.value, sent_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )


async def mark_attempt_failed(
    session: AsyncSession,
    row_id: int,
    error: str,
    *,
    retry_after: timedelta | None,
    now: datetime | None = None,
) -> None:
    """Record a failed attempt; retry after `retry_after`, or give up (status failed) when it is None."""
    now = now or utcnow()
    values: dict[str, Any] = {"attempts": Outbox.attempts + 1, "last_error": error[:2000]}
    if retry_after is None:
        values["status"] = OutboxStatus.FAILED.value
    else:
        values["next_attempt_at"] = now + retry_after
    await session.execute(
        update(Outbox).where(Outbox.id == row_id).values(**values).execution_options(synchronize_session=False)
    )
