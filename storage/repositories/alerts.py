"""Alert opt-ins (per user and chat), users' alert rules, and the cooldown of each (condition, recipient)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.alerts import AlertFiring, AlertRule
from storage.models import AlertSubscription, Chat, Outbox, OutboxStatus, User
from storage.repositories._dml import rowcount, table_of
from storage.repositories._upsert import insert_ignore
from storage.types import utcnow

TOPICS: tuple[str, ...] = ("market", "technical", "onchain", "position")
ON_BY_DEFAULT = frozenset({"position"})  # a trader's own positions are told unless they opt out
PENDING, ACTIVE, OFF, CANCELLED = "pending", "active", "off", "cancelled"


@dataclass(frozen=True)
class Recipient:
    """Where an alert goes: a user's private chat or a chat, with its opt-in details."""

    ref: str  # "user:<id>" or "chat:<id>", part of cooldown keys
    platform: str
    chat: str  # platform chat id
    user_id: int | None
    min_severity: str = "info"
    quiet_hours: tuple[int, int] | None = None


def _owner(user_id: int | None, chat_id: int | None) -> Any:
    if chat_id is not None:
        return (AlertSubscription.chat_id == chat_id,)
    return (col(AlertSubscription.user_id) == user_id, col(AlertSubscription.chat_id).is_(None))


async def subscriptions_of(
    session: AsyncSession, *, user_id: int | None = None, chat_id: int | None = None
) -> list[AlertSubscription]:
    """The opt-in rows of a user (their private alerts) or of a chat."""
    stmt = select(AlertSubscription).where(*_owner(user_id, chat_id)).order_by(col(AlertSubscription.id))
    return list((await session.scalars(stmt)).all())


async def set_subscription(
    session: AsyncSession,
    *,
    topic: str,
    enabled: bool,
    user_id: int | None = None,
    chat_id: int | None = None,
    symbol: str | None = None,
    min_severity: str | None = None,
) -> AlertSubscription:
    """Turn a topic (optionally for one symbol) on or off for a user or chat; returns the row."""
    if topic not in TOPICS:
        raise ValueError(f"unknown alert topic {topic!r}")
    rows = await subscriptions_of(session, user_id=user_id, chat_id=chat_id)
    quiet = next((r.quiet_hours for r in rows if r.quiet_hours), None)
    row = next((r for r in rows if r.topic == topic and r.symbol == symbol), None)
    if row is None:
        row = AlertSubscription(
            user_id=None if chat_id is not None else user_id,
            chat_id=chat_id,
            topic=topic,
            symbol=symbol,
            quiet_hours=quiet,
        )
        session.add(row)
    row.enabled = enabled
    if min_severity is not None:
        row.min_severity = min_severity
    await session.flush()
    return row


async def set_quiet_hours(
    session: AsyncSession, hours: tuple[int, int] | None, *, user_id: int | None = None, chat_id: int | None = None
) -> None:
    """Quiet hours (UTC start and end hour) for every opt-in of a user or chat; None lifts them.

    A user's position row is created (on) if missing, so their position alerts keep quiet hours too.
    """
    if chat_id is None and not any(
        r.topic == "position" for r in await subscriptions_of(session, user_id=user_id, chat_id=None)
    ):
        await set_subscription(session, topic="position", enabled=True, user_id=user_id)
    await session.execute(
        update(AlertSubscription)
        .where(*_owner(user_id, chat_id))
        .values(quiet_hours=list(hours) if hours else None)
        .execution_options(synchronize_session=False)
    )


async def recipients(session: AsyncSession, topic: str, symbol: str) -> list[Recipient]:
    """Everyone opted in to `topic` for `symbol` (a row without a symbol covers all), users and chats alike."""
    stmt = (
        select(AlertSubscription, User, Chat)
        .outerjoin(User, col(User.id) == col(AlertSubscription.user_id))
        .outerjoin(Chat, col(Chat.id) == col(AlertSubscription.chat_id))
        .where(
            col(AlertSubscription.topic) == topic,
            col(AlertSubscription.enabled).is_(True),
            or_(col(AlertSubscription.symbol).is_(None), col(AlertSubscription.symbol) == symbol),
        )
        .order_by(col(AlertSubscription.id))
    )
    seen: dict[str, Recipient] = {}
    for sub, user, chat in (await session.execute(stmt)).all():
        found = _recipient(sub, user, chat)
        if found is not None and found.ref not in seen:
            seen[found.ref] = found
    return list(seen.values())


def _hours_pair(hours: list[int] | None) -> tuple[int, int] | None:
    return (hours[0], hours[1]) if hours and len(hours) >= 2 else None


def _recipient(sub: AlertSubscription, user: User | None, chat: Chat | None) -> Recipient | None:
    quiet = _hours_pair(sub.quiet_hours)
    if chat is not None:
        if not chat.active:
            return None
        return Recipient(f"chat:{chat.id}", chat.platform, chat.platform_chat_id, None, sub.min_severity, quiet)
    if user is None or not user.active:
        return None
    return Recipient(f"user:{user.id}", user.platform, user.platform_user_id, user.id, sub.min_severity, quiet)


async def user_recipient(session: AsyncSession, user_id: int, topic: str = "position") -> Recipient | None:
    """A user's private chat for `topic` with their opt-in details; None when they opted out or are gone."""
    user = await session.get(User, user_id)
    if user is None or not user.active:
        return None
    rows = await subscriptions_of(session, user_id=user_id)
    row = next((r for r in rows if r.topic == topic and r.symbol is None), None)
    if row is None and topic not in ON_BY_DEFAULT:
        return None
    if row is not None and not row.enabled:
        return None
    quiet_row = row if row is not None and row.quiet_hours else next((r for r in rows if r.quiet_hours), None)
    quiet = _hours_pair(quiet_row.quiet_hours) if quiet_row else None
    severity = row.min_severity if row is not None else "info"
    return Recipient(f"user:{user_id}", user.platform, user.platform_user_id, user_id, severity, quiet)


async def claim_firing(session: AsyncSession, key: str, cooldown: timedelta, now: datetime | None = None) -> bool:
    """True when the condition `key` may alert now (never, or not within `cooldown`), and stamps it fired.

    One conditional statement decides, so two processes (or a restarted one) never both fire within a cooldown.
    """
    now = now or utcnow()
    firings = table_of(AlertFiring)
    if await insert_ignore(session, firings, {"key": key, "fired_at": now}):
        return True
    result = await session.execute(
        update(AlertFiring)
        .where(col(AlertFiring.key) == key, col(AlertFiring.fired_at) <= now - cooldown)
        .values(fired_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


async def enqueue_alert(
    session: AsyncSession,
    recipient: Recipient,
    payload: dict[str, Any],
    dedup_key: str,
    *,
    deliver_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue an alert for one recipient, held until `deliver_at` (the end of quiet hours) when given."""
    now = now or utcnow()
    return await insert_ignore(
        session,
        table_of(Outbox),
        {
            "platform": recipient.platform,
            "recipient": recipient.chat,
            "user_id": recipient.user_id,
            "payload": payload,
            "dedup_key": dedup_key[:191],
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": max(deliver_at or now, now),
            "created_at": now,
        },
    )


# -- rules ----------------------------------------------------------------------------------------------------


async def add_rule(
    session: AsyncSession,
    *,
    user_id: int,
    platform: str,
    recipient: str,
    text: str,
    spec: dict[str, Any],
    description: str,
    now: datetime | None = None,
) -> AlertRule:
    """Store a rule, pending until its owner confirms it."""
    row = AlertRule(
        user_id=user_id,
        platform=platform,
        recipient=recipient,
        text=text[:2000],
        spec=spec,
        description=description,
        status=PENDING,
        created_at=now or utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def rules_of(session: AsyncSession, user_id: int, statuses: tuple[str, ...] = (ACTIVE,)) -> list[AlertRule]:
    """A user's rules in the given states, oldest first."""
    stmt = (
        select(AlertRule)
        .where(col(AlertRule.user_id) == user_id, col(AlertRule.status).in_(statuses))
        .order_by(col(AlertRule.id))
    )
    return list((await session.scalars(stmt)).all())


async def active_rules(session: AsyncSession) -> list[AlertRule]:
    """Every confirmed rule that is on."""
    stmt = select(AlertRule).where(col(AlertRule.status) == ACTIVE).order_by(col(AlertRule.id))
    return list((await session.scalars(stmt)).all())


async def move_rule(
    session: AsyncSession,
    rule_id: int,
    user_id: int,
    *,
    to: str,
    only_from: tuple[str, ...],
    now: datetime | None = None,
) -> bool:
    """Change a rule's state only when it is the user's and in one of `only_from` (atomic; False otherwise)."""
    values: dict[str, Any] = {"status": to}
    if to == ACTIVE:
        values["confirmed_at"] = now or utcnow()
    result = await session.execute(
        update(AlertRule)
        .where(
            col(AlertRule.id) == rule_id,
            col(AlertRule.user_id) == user_id,
            col(AlertRule.status).in_(only_from),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))


async def forget_firings(session: AsyncSession, prefix: str) -> None:
    """Drop the cooldown stamps of a rule that was switched off (a rule made later starts fresh)."""
    await session.execute(delete(AlertFiring).where(col(AlertFiring.key).startswith(prefix)))


async def watched_symbols(session: AsyncSession) -> tuple[bool, set[str]]:
    """(anyone opted in to market/technical/on-chain alerts at all, the symbols they named explicitly)."""
    stmt = select(col(AlertSubscription.symbol)).where(
        col(AlertSubscription.enabled).is_(True),
        col(AlertSubscription.topic).in_(("market", "technical", "onchain")),
    )
    rows = (await session.execute(stmt)).all()
    return bool(rows), {s for (s,) in rows if s}


async def quiet_hours_of(session: AsyncSession, user_id: int) -> tuple[int, int] | None:
    """A user's quiet hours (set on all their opt-ins at once), None when they have none."""
    for row in await subscriptions_of(session, user_id=user_id):
        if row.quiet_hours and len(row.quiet_hours) >= 2:
            return (int(row.quiet_hours[0]), int(row.quiet_hours[1]))
    return None


async def chat_id_of(session: AsyncSession, platform: str, platform_chat_id: str, kind: str = "group") -> int:
    """The id of a chat row (created on first use), for a group's opt-ins."""
    await insert_ignore(
        session,
        table_of(Chat),
        {
            "platform": platform,
            "platform_chat_id": platform_chat_id,
            "kind": kind,
            "settings": {},
            "active": True,
            "created_at": utcnow(),
        },
    )
    found = await session.scalar(
        select(col(Chat.id)).where(col(Chat.platform) == platform, col(Chat.platform_chat_id) == platform_chat_id)
    )
    assert found is not None
    return int(found)
