"""Users: race-free get-or-create by platform identity."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, select
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
