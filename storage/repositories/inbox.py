"""Webhook inbox: each platform update stored once (unique update id) before it is answered, then processed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import InboxStatus, InboxUpdate
from storage.repositories._dml import rowcount, table_of
from storage.repositories._lease import claim_leased, renew_leases
from storage.types import utcnow

# The stores and marks of the webhook path on PostgreSQL, on a connection's driver outside any transaction
# (storage.repositories._driver): one statement and one round trip per batch, whatever its size (the rows travel
# as arrays), each committed by itself. $1 platform, $2 pending, $3 worker, $4 lease end, $5 received at,
# $6 update ids, $7 payloads (JSON text).
STORE_SQL = """
INSERT INTO inbox (platform, update_id, payload, status, claimed_by, lease_until, received_at)
SELECT $1::varchar, u.update_id, u.payload::json, $2::varchar, $3::varchar, $4::timestamptz, $5::timestamptz
FROM unnest($6::bigint[], $7::text[]) WITH ORDINALITY AS u(update_id, payload, n)
ORDER BY u.n
ON CONFLICT DO NOTHING
RETURNING update_id, id
"""
# $1 done, $2 processed at, $3 row ids, $4 replies (JSON text, or NULL for none).
MARK_SQL = """
UPDATE inbox SET status = $1::varchar, processed_at = $2::timestamptz, lease_until = NULL, reply = m.reply::json
FROM unnest($3::int[], $4::text[]) AS m(id, reply)
WHERE inbox.id = m.id
"""


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
    stored = await store_many(session, [(update_id, payload)], platform=platform, worker=worker, lease=lease, now=now)
    return stored.get(update_id)


async def store_many(
    session: AsyncSession | Any,
    updates: Sequence[tuple[int, dict[str, Any]]],
    *,
    platform: str,
    worker: str,
    lease: timedelta,
    now: datetime | None = None,
) -> dict[int, int]:
    """Store (update id, payload) pairs claimed by `worker` in one INSERT; row id by update id of those that were
    new (the others, repeats, are absent).

    `session` is a session in a transaction, or a PostgreSQL driver connection outside one
    (`_driver.autocommit_driver`): the INSERT then commits by itself before this returns."""
    if not updates:
        return {}
    now = now or utcnow()
    if not isinstance(session, AsyncSession):
        rows = await session.fetch(
            STORE_SQL,
            platform,
            InboxStatus.PENDING.value,
            worker,
            now + lease,
            now,
            [update_id for update_id, _ in updates],
            [json.dumps(payload) for _, payload in updates],
        )
        return {row[0]: row[1] for row in rows}
    table = table_of(InboxUpdate)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    rows = [
        {
            "platform": platform,
            "update_id": update_id,
            "payload": payload,
            "status": InboxStatus.PENDING.value,
            "claimed_by": worker,
            "lease_until": now + lease,
            "received_at": now,
        }
        for update_id, payload in updates
    ]
    # One statement compiled once: SQLAlchemy sends the rows as one multi-row INSERT ("insertmanyvalues"); a
    # `.values(rows)` statement was compiled anew for every batch (a third of the store's CPU).
    stmt = insert(table).on_conflict_do_nothing().returning(table.c.update_id, table.c.id)
    return {row.update_id: row.id for row in await session.execute(stmt, rows)}


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
    await mark_done_many(session, [(row_id, None)], now)


async def mark_done_many(
    session: AsyncSession | Any, marks: Sequence[tuple[int, dict[str, Any] | None]], now: datetime | None = None
) -> None:
    """Record that the updates were handled, each with the reply answered in its webhook response (or None), in
    one statement (one round trip however many); `session` as for `store_many`."""
    if not marks:
        return
    if not isinstance(session, AsyncSession):
        await session.execute(
            MARK_SQL,
            InboxStatus.DONE.value,
            now or utcnow(),
            [row_id for row_id, _ in marks],
            [None if reply is None else json.dumps(reply) for _, reply in marks],
        )
        return
    table = table_of(InboxUpdate)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(
            status=InboxStatus.DONE.value,
            processed_at=now or utcnow(),
            lease_until=None,
            reply=bindparam("row_reply", type_=table.c.reply.type),
        )
    )
    await session.execute(stmt, [{"row_id": row_id, "row_reply": reply} for row_id, reply in marks])


async def stored_reply(session: AsyncSession, *, platform: str, update_id: int) -> tuple[bool, dict[str, Any] | None]:
    """(handled, the call it was answered with in its webhook response or None), for a retry of the update."""
    row = (
        await session.execute(
            select(col(InboxUpdate.status), col(InboxUpdate.reply)).where(
                col(InboxUpdate.platform) == platform, col(InboxUpdate.update_id) == update_id
            )
        )
    ).first()
    if row is None:  # pruned: handled long ago
        return True, None
    done = row[0] == InboxStatus.DONE.value
    return done, row[1] if done else None


async def prune(session: AsyncSession, *, older_than: datetime) -> int:
    """Delete handled updates received before `older_than` (Telegram retries for at most a day)."""
    result = await session.execute(
        delete(InboxUpdate).where(
            col(InboxUpdate.status) == InboxStatus.DONE.value,
            col(InboxUpdate.received_at) < older_than,
        )
    )
    return rowcount(result)
