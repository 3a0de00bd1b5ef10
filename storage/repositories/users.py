"""Users: race-free get-or-create by platform identity."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Select, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.errors import NotFoundError
from storage.models import Platform, User
from storage.repositories._dml import table_of
from storage.repositories._upsert import insert_ignore
from storage.types import utcnow


def parse_user_ref(ref: str) -> tuple[str, str]:
    """Split "telegram:123" into (platform, id); ValueError with a clear message otherwise."""
    platform, sep, uid = ref.partition(":")
    if not sep or not uid or platform not in {p.value for p in Platform}:
        raise ValueError(f"{ref!r} is not a user reference like telegram:123456 or discord:987654")
    return platform, uid


async def get_or_create_user(
    session: AsyncSession, platform: str, platform_user_id: str, display_name: str | None = None
) -> User:
    """The user with this platform identity, created if new (safe under concurrency)."""
    now = utcnow()
    await insert_ignore(
        session,
        table_of(User),
        {
            "platform": platform,
            "platform_user_id": platform_user_id,
            "display_name": display_name,
            "roles": [],
            "preferences": {},
            "active": True,
            "created_at": now,
            "updated_at": now,
        },
    )
    return (await session.scalars(_by_identity(platform, platform_user_id))).one()


async def find_user_or_none(session: AsyncSession, platform: str, platform_user_id: str) -> User | None:
    """The user with this identity, or None (a read only)."""
    return (await session.scalars(_by_identity(platform, platform_user_id))).first()


async def find_user(session: AsyncSession, platform: str, platform_user_id: str) -> User:
    """The existing user with this identity; NotFoundError otherwise."""
    user = (await session.scalars(_by_identity(platform, platform_user_id))).first()
    if user is None:
        raise NotFoundError(f"no user {platform}:{platform_user_id}")
    return user


async def user_refs(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    """ "platform:id" of each user id (as people name users: `telegram:123`, `console:local`)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(User).where(col(User.id).in_(wanted)))
    return {u.id: f"{u.platform}:{u.platform_user_id}" for u in rows if u.id is not None}


def _by_identity(platform: str, platform_user_id: str) -> Select[User]:
    return select(User).where(col(User.platform) == platform, col(User.platform_user_id) == platform_user_id)


class Identity(NamedTuple):
    """What the bot core needs of a user on each message: the row id, whether reachable, the roles."""

    id: int
    active: bool
    roles: list[str]


def _identity(row: Any) -> Identity | None:
    return Identity(row.id, bool(row.active), list(row.roles or [])) if row is not None else None


async def find_identity(session: AsyncSession, platform: str, platform_user_id: str) -> Identity | None:
    """The identity of an existing user, or None: three columns read without loading the ORM object (a read)."""
    users = table_of(User)
    stmt = select(users.c.id, users.c.active, users.c.roles).where(
        users.c.platform == platform, users.c.platform_user_id == platform_user_id
    )
    return _identity((await session.execute(stmt)).first())


async def reach_identity(
    session: AsyncSession, platform: str, platform_user_id: str, display_name: str | None = None
) -> Identity:
    """The identity of the user who just wrote: created if new, marked active again if they had gone (race-free).

    One INSERT ... ON CONFLICT DO NOTHING RETURNING for a new user; an existing one (inactive, or created a moment
    ago by another writer) is answered by the UPDATE that marks it active.
    """
    users = table_of(User)
    columns = (users.c.id, users.c.active, users.c.roles)
    now = utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    created = insert(users).values(
        platform=platform,
        platform_user_id=platform_user_id,
        display_name=display_name,
        roles=[],
        preferences={},
        active=True,
        created_at=now,
        updated_at=now,
    )
    found = _identity((await session.execute(created.on_conflict_do_nothing().returning(*columns))).first())
    if found is not None:
        return found
    where = (users.c.platform == platform, users.c.platform_user_id == platform_user_id)
    reached = update(users).where(*where).values(active=True, updated_at=now).returning(*columns)
    found = _identity((await session.execute(reached)).first())
    if found is None:
        raise NotFoundError(f"user {platform}:{platform_user_id} vanished while being created")
    return found
