"""Audit log: append-only record of intents, approvals, order requests, exchange responses and errors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import AuditLog
from storage.types import utcnow

# Defence in depth: whatever a caller passes, these keys never reach the audit table.
_SECRET_KEYS = frozenset({"apikey", "api_key", "secret", "password", "passphrase", "token", "privatekey"})


def scrub(value: Any) -> Any:
    """A copy of `value` with credential-like keys replaced by "***"."""
    if isinstance(value, dict):
        return {k: "***" if str(k).lower() in _SECRET_KEYS else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


async def record(
    session: AsyncSession,
    kind: str,
    *,
    user_id: int | None = None,
    account_id: int | None = None,
    ref: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one audit entry (kind e.g. intent, approval, order_request, exchange_response, error)."""
    entry = AuditLog(
        created_at=utcnow(), kind=kind, user_id=user_id, account_id=account_id, ref=ref, data=scrub(data or {})
    )
    session.add(entry)
    await session.flush()
    return entry


async def entries(session: AsyncSession, *, ref: str | None = None, limit: int = 100) -> list[AuditLog]:
    """Most recent entries first, optionally for one reference (approval token, client order id)."""
    stmt = select(AuditLog).order_by(col(AuditLog.id).desc()).limit(limit)
    if ref is not None:
        stmt = stmt.where(col(AuditLog.ref) == ref)
    return list((await session.scalars(stmt)).all())
