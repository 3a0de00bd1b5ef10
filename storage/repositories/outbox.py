"""Outbox: messages waiting for delivery, deduplicated, retried with backoff, surviving restarts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Outbox, OutboxStatus
from storage.repositories._dml import rowcount, table_of
from storage.repositories._lease import claim_leased, renew_leases
from storage.repositories._upsert import insert_ignore
from storage.types import utcnow

# mark_sent on a PostgreSQL driver connection: $1 sent, $2 sent at, $3 row id, $4 the worker that must still hold
# the row (NULL: any), $5 pending.
MARK_SENT_SQL = """
UPDATE outbox SET status = $1::varchar, sent_at = $2::timestamptz, lease_until = NULL
WHERE id = $3::int AND ($4::varchar IS NULL OR (claimed_by = $4::varchar AND status = $5::varchar))
"""


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
        table_of(Outbox),
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
        .where(col(Outbox.status) == OutboxStatus.PENDING.value, col(Outbox.next_attempt_at) <= now)
        .order_by(col(Outbox.id))
        .limit(limit)
    )
    if platform is not None:
        stmt = stmt.where(col(Outbox.platform) == platform)
    return list((await session.scalars(stmt)).all())


async def claim(
    session: AsyncSession,
    worker: str,
    *,
    platforms: list[str],
    lease: timedelta,
    limit: int,
    now: datetime | None = None,
) -> list[Outbox]:
    """Claim up to `limit` pending rows for `worker` until now + `lease`, oldest first.

    Rows another worker holds under a live lease are skipped (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
    claimers never wait on nor take each other's rows); an expired lease is free again, and the worker's own
    claims are renewed. SQLite has one writer at a time, which gives the same exclusion.
    """
    now = now or utcnow()
    free = (
        col(Outbox.status) == OutboxStatus.PENDING.value,
        col(Outbox.platform).in_(platforms),
        or_(col(Outbox.lease_until).is_(None), col(Outbox.lease_until) <= now, col(Outbox.claimed_by) == worker),
    )
    return await claim_leased(session, Outbox, free, worker=worker, lease=lease, limit=limit, now=now)


async def renew(session: AsyncSession, worker: str, lease: timedelta, now: datetime | None = None) -> int:
    """Extend the lease of every pending row `worker` holds; returns how many."""
    now = now or utcnow()
    held = (col(Outbox.claimed_by) == worker, col(Outbox.status) == OutboxStatus.PENDING.value)
    return await renew_leases(session, Outbox, held, lease=lease, now=now)


async def release(session: AsyncSession, worker: str) -> int:
    """Give back the pending rows `worker` holds (a clean stop), so another worker need not wait for the lease."""
    result = await session.execute(
        update(Outbox)
        .where(col(Outbox.claimed_by) == worker, col(Outbox.status) == OutboxStatus.PENDING.value)
        .values(claimed_by=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def mark_sent(
    session: AsyncSession | Any, row_id: int, now: datetime | None = None, *, worker: str | None = None
) -> bool:
    """Record a successful delivery; with `worker`, only while that worker still holds the row (False if not).

    `session` is a session in a transaction, or a PostgreSQL driver connection outside one
    (`_driver.autocommit_driver`): the UPDATE then commits by itself, one round trip."""
    if not isinstance(session, AsyncSession):
        status = await session.execute(
            MARK_SENT_SQL, OutboxStatus.SENT.value, now or utcnow(), row_id, worker, OutboxStatus.PENDING.value
        )
        return str(status) != "UPDATE 0"
    stmt = update(Outbox).where(col(Outbox.id) == row_id)
    if worker is not None:
        stmt = stmt.where(col(Outbox.claimed_by) == worker, col(Outbox.status) == OutboxStatus.PENDING.value)
    result = await session.execute(
        stmt.values(status=OutboxStatus.SENT.value, sent_at=now or utcnow(), lease_until=None).execution_options(
            synchronize_session=False
        )
    )
    return bool(rowcount(result))


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
        update(Outbox).where(col(Outbox.id) == row_id).values(**values).execution_options(synchronize_session=False)
    )


async def prune(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete delivered and failed messages queued before `older_than` (pending ones always stay).

    A deleted row's dedup key no longer blocks a repeat: dedup holds within the retention window."""
    stmt = delete(Outbox).where(
        col(Outbox.status).in_([OutboxStatus.SENT.value, OutboxStatus.FAILED.value]),
        col(Outbox.created_at) < older_than,
    )
    return rowcount(await session.execute(stmt))
