"""Signatures of accepted signal webhooks: a signature seen before is a replay (one row per signal, pruned later)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import SignalNonce
from storage.repositories._dml import rowcount, table_of
from storage.repositories._upsert import insert_ignore
from storage.types import utcnow


async def claim(session: AsyncSession, signature: str, signed_at: datetime, now: datetime | None = None) -> bool:
    """Record `signature` as used; False when it already was (a replay), even under concurrent requests."""
    values = {"signature": signature, "signed_at": signed_at, "received_at": now or utcnow()}
    return await insert_ignore(session, table_of(SignalNonce), values)


async def prune(session: AsyncSession, older_than: datetime) -> int:
    """Forget signatures received before `older_than` (older signals are refused by their timestamp anyway)."""
    result = await session.execute(delete(SignalNonce).where(col(SignalNonce.received_at) < older_than))
    return rowcount(result)
