"""Approvals: a confirmation works once, only for its owner, only before expiry, only for its exact intent."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.models import Approval, ApprovalStatus
from storage.repositories._dml import rowcount
from storage.types import utcnow

# 16 random bytes → 22 url-safe characters; "v1:<token>" stays far below Telegram's 64-byte callback limit.
TOKEN_BYTES = 16


class Outcome(StrEnum):
    """Why a consume/reject attempt did or did not take effect."""

    OK = "ok"
    NOT_FOUND = "not_found"
    NOT_OWNER = "not_owner"
    EXPIRED = "expired"
    ALREADY_DECIDED = "already_decided"
    INTENT_MISMATCH = "intent_mismatch"


@dataclass(frozen=True)
class Decision:
    """Result of trying to consume or reject an approval."""

    outcome: Outcome
    approval: Approval | None

    @property
    def ok(self) -> bool:
        """True when this call (and no other) flipped the approval."""
        return self.outcome is Outcome.OK


def new_token() -> str:
    """A fresh unguessable approval token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def intent_hash(intent: dict[str, Any]) -> str:
    """SHA-256 of the intent's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(intent, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_approval(
    session: AsyncSession,
    *,
    owner_user_id: int,
    intent: dict[str, Any],
    summary: str,
    ttl: timedelta,
    account_id: int | None = None,
    platform: str | None = None,
    chat_ref: str | None = None,
    now: datetime | None = None,
    token: str | None = None,
) -> Approval:
    """Store a pending approval for `intent` with a fresh unguessable token (or `token`, drawn earlier)."""
    now = now or utcnow()
    approval = Approval(
        token=token or new_token(),
        owner_user_id=owner_user_id,
        account_id=account_id,
        intent=intent,
        intent_hash=intent_hash(intent),
        summary=summary,
        status=ApprovalStatus.PENDING.value,
        platform=platform,
        chat_ref=chat_ref,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(approval)
    await session.flush()
    return approval


async def get_approval(session: AsyncSession, token: str) -> Approval | None:
    """The approval behind a button token, if any."""
    return (await session.scalars(select(Approval).where(col(Approval.token) == token))).first()


async def _decide(
    session: AsyncSession, token: str, user_id: int, status: ApprovalStatus, now: datetime | None
) -> Decision:
    now = now or utcnow()
    # One conditional UPDATE is the whole guard: of N concurrent presses exactly one matches the row.
    stmt = (
        update(Approval)
        .where(
            col(Approval.token) == token,
            col(Approval.owner_user_id) == user_id,
            col(Approval.status) == ApprovalStatus.PENDING.value,
            col(Approval.expires_at) > now,
        )
        .values(status=status.value, decided_at=now)
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    approval = await get_approval(session, token)
    if approval is not None:
        await session.refresh(approval)
    if rowcount(result) == 1:
        assert approval is not None
        if approval.intent_hash != intent_hash(approval.intent):
            # The stored intent no longer matches what was shown: the token is spent, nothing may execute.
            return Decision(Outcome.INTENT_MISMATCH, approval)
        return Decision(Outcome.OK, approval)
    if approval is None:
        return Decision(Outcome.NOT_FOUND, None)
    if approval.owner_user_id != user_id:
        return Decision(Outcome.NOT_OWNER, approval)
    if approval.status != ApprovalStatus.PENDING.value:
        return Decision(Outcome.ALREADY_DECIDED, approval)
    return Decision(Outcome.EXPIRED, approval)


async def consume_approval(session: AsyncSession, token: str, user_id: int, now: datetime | None = None) -> Decision:
    """Atomically flip pending → consumed for the owner before expiry; only one caller ever gets OK."""
    return await _decide(session, token, user_id, ApprovalStatus.CONSUMED, now)


async def reject_approval(session: AsyncSession, token: str, user_id: int, now: datetime | None = None) -> Decision:
    """Atomically flip pending → rejected for the owner before expiry."""
    return await _decide(session, token, user_id, ApprovalStatus.REJECTED, now)


async def expire_approvals(session: AsyncSession, now: datetime | None = None) -> list[Approval]:
    """Flip every overdue pending approval to expired; returns them so their messages can be edited."""
    now = now or utcnow()
    stmt = (
        update(Approval)
        .where(col(Approval.status) == ApprovalStatus.PENDING.value, col(Approval.expires_at) <= now)
        .values(status=ApprovalStatus.EXPIRED.value, decided_at=now)
        .returning(col(Approval.id))
        .execution_options(synchronize_session=False)
    )
    ids = list((await session.execute(stmt)).scalars())
    if not ids:
        return []
    rows = list((await session.scalars(select(Approval).where(col(Approval.id).in_(ids)))).all())
    for row in rows:
        await session.refresh(row)
    return rows


async def record_result(session: AsyncSession, token: str, result: dict[str, Any]) -> None:
    """Attach the execution outcome to a consumed approval."""
    await session.execute(
        update(Approval)
        .where(col(Approval.token) == token)
        .values(result=result)
        .execution_options(synchronize_session=False)
    )


# Results that are the truth about a consumed approval; "unknown" (the exchange could not be asked yet) and a
# missing result mean its order still has to be settled.
UNSETTLED_RESULTS = frozenset({"unknown", "pending"})


def is_settled(approval: Approval) -> bool:
    """True unless the approval is consumed and its order's outcome is not known (missing or unknown)."""
    if approval.status != ApprovalStatus.CONSUMED.value:
        return True
    status = (approval.result or {}).get("status")
    return bool(status) and status not in UNSETTLED_RESULTS


async def unsettled_approvals(
    session: AsyncSession, before: datetime, since: datetime, token: str | None = None
) -> list[Approval]:
    """Consumed approvals (all, or `token`) decided in [since, before] whose order has no known outcome yet."""
    stmt = select(Approval).where(
        col(Approval.status) == ApprovalStatus.CONSUMED.value,
        col(Approval.decided_at) <= before,
        col(Approval.decided_at) >= since,
    )
    if token is not None:
        stmt = stmt.where(col(Approval.token) == token)
    rows = (await session.scalars(stmt.order_by(col(Approval.id)))).all()
    return [row for row in rows if not is_settled(row)]


async def reopen_approval(session: AsyncSession, token: str, result: dict[str, Any]) -> bool:
    """Consumed → pending again, for an order that never reached the exchange: the next press places it once."""
    stmt = (
        update(Approval)
        .where(col(Approval.token) == token, col(Approval.status) == ApprovalStatus.CONSUMED.value)
        .values(status=ApprovalStatus.PENDING.value, decided_at=None, result=result)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(await session.execute(stmt)))


async def expire_consumed(session: AsyncSession, token: str, result: dict[str, Any]) -> None:
    """Consumed → expired, for an order that never reached the exchange and may no longer be confirmed."""
    await session.execute(
        update(Approval)
        .where(col(Approval.token) == token, col(Approval.status) == ApprovalStatus.CONSUMED.value)
        .values(status=ApprovalStatus.EXPIRED.value, result=result)
        .execution_options(synchronize_session=False)
    )
