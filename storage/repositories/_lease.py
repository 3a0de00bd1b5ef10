"""Rows claimed under a lease (outbox, webhook inbox): one claim and one renewal for every table that has them.

A claim takes free rows with `FOR UPDATE SKIP LOCKED` (two claimers never wait on nor take each other's rows on
PostgreSQL; SQLite has one writer at a time) and stamps them with the worker id and the lease's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.repositories._dml import rowcount


class Leased(Protocol):
    """A table row with an integer id (and, in its table, claimed_by and lease_until columns)."""

    id: int | None


Row = TypeVar("Row", bound=Leased)


async def claim_leased(
    session: AsyncSession,
    model: type[Row],
    free: Sequence[Any],
    *,
    worker: str,
    lease: timedelta,
    limit: int,
    now: datetime,
) -> list[Row]:
    """Claim up to `limit` rows of `model` matching the `free` conditions for `worker`, oldest first."""
    ident = col(model.id)
    ids = select(ident).where(*free).order_by(ident).limit(limit).with_for_update(skip_locked=True)
    rows = (
        await session.scalars(
            update(model)
            .where(ident.in_(ids.scalar_subquery()))
            .values(claimed_by=worker, lease_until=now + lease)
            .returning(model)
            .execution_options(synchronize_session=False)
        )
    ).all()
    return sorted(rows, key=lambda r: r.id or 0)


async def renew_leases(
    session: AsyncSession, model: type[Any], held: Sequence[Any], *, lease: timedelta, now: datetime
) -> int:
    """Extend the lease of the rows matching `held` (a worker's pending claims); returns how many."""
    result = await session.execute(
        update(model).where(*held).values(lease_until=now + lease).execution_options(synchronize_session=False)
    )
    return rowcount(result)
