"""Users: race-free get-or-create by platform identity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


# Identities per statement: one parameter each (plus the platform) stays far under SQLite's 32,766 and
# PostgreSQL's 65,535, and eight columns per inserted row likewise.
IDENTITY_CHUNK = 500


def _identities(rows: Iterable[Any]) -> dict[str, Identity]:
    """Rows of (platform user id, id, active, roles), SQLAlchemy's or asyncpg's, by platform user id."""
    return {ref: Identity(row_id, bool(active), list(roles or [])) for ref, row_id, active, roles in rows}


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), IDENTITY_CHUNK):
        yield items[start : start + IDENTITY_CHUNK]


# The same read for a PostgreSQL driver connection outside any transaction (storage.repositories._driver): one
# statement and one round trip, the ids as one array parameter; json columns decode by the codec SQLAlchemy's
# asyncpg dialect installs on each connection.
FIND_IDENTITIES_SQL = (
    "SELECT platform_user_id, id, active, roles FROM users WHERE platform = $1 AND platform_user_id = ANY($2::text[])"
)


async def find_identities(
    session: AsyncSession | Any, platform: str, platform_user_ids: Iterable[str]
) -> dict[str, Identity]:
    """The identities of those of these users who exist, by platform user id: one SELECT of four columns (a read).

    `session` is a session, or a PostgreSQL driver connection (`_driver.autocommit_driver`): then a read with no
    transaction around it, so no BEGIN and no ROLLBACK either."""
    if not isinstance(session, AsyncSession):
        return _identities(await session.fetch(FIND_IDENTITIES_SQL, platform, sorted(set(platform_user_ids))))
    users = table_of(User)
    columns = (users.c.platform_user_id, users.c.id, users.c.active, users.c.roles)
    found: dict[str, Identity] = {}
    for chunk in _chunks(sorted(set(platform_user_ids))):
        where = (users.c.platform == platform, users.c.platform_user_id.in_(chunk))
        found.update(_identities(await session.execute(select(*columns).where(*where))))
    return found


async def find_identity(session: AsyncSession, platform: str, platform_user_id: str) -> Identity | None:
    """The identity of an existing user, or None: read without loading the ORM object (a read)."""
    return (await find_identities(session, platform, [platform_user_id])).get(platform_user_id)


# reach_identities' two statements for a PostgreSQL driver connection in a transaction of its own: the rows as
# arrays through unnest, inserted in the order given (sorted), each statement one round trip.
REACH_INSERT_SQL = (
    "INSERT INTO users (platform, platform_user_id, display_name, roles, preferences, active, created_at, updated_at) "
    "SELECT $1, u.ref, u.name, '[]'::json, '{}'::json, true, $4, $4 "
    "FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(ref, name, n) ORDER BY u.n "
    "ON CONFLICT DO NOTHING RETURNING platform_user_id, id, active, roles"
)
REACH_UPDATE_SQL = (
    "UPDATE users SET active = true, updated_at = $3 WHERE platform = $1 AND platform_user_id = ANY($2::text[]) "
    "RETURNING platform_user_id, id, active, roles"
)


async def _reach_on_driver(driver: Any, platform: str, people: Mapping[str, str | None]) -> dict[str, Identity]:
    refs, now = sorted(people), utcnow()
    found = _identities(await driver.fetch(REACH_INSERT_SQL, platform, refs, [people[r] for r in refs], now))
    rest = [ref for ref in refs if ref not in found]
    if rest:  # a second statement: a new snapshot sees a row another writer committed while the INSERT waited on it
        found.update(_identities(await driver.fetch(REACH_UPDATE_SQL, platform, rest, now)))
    return found


async def reach_identities(
    session: AsyncSession | Any, platform: str, people: Mapping[str, str | None]
) -> dict[str, Identity]:
    """The identities of users who just wrote (platform user id → display name): created if new, marked active
    again if they had gone (race-free), keyed by platform user id.

    One INSERT ... ON CONFLICT DO NOTHING RETURNING for all the new ones; those it does not return (inactive, or
    created a moment ago by another writer) are answered by one UPDATE that marks them active. Rows are written in
    sorted order, so two processes reaching overlapping sets at once wait on each other's rows in the same order
    (no deadlock on PostgreSQL). `session` is a session in a transaction, or a PostgreSQL driver connection in a
    transaction (`_driver.autocommit_driver`, then `driver.transaction()`).
    """
    if not isinstance(session, AsyncSession):
        return _all_reached(platform, people, await _reach_on_driver(session, platform, people))
    users = table_of(User)
    columns = (users.c.platform_user_id, users.c.id, users.c.active, users.c.roles)
    now = utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    found: dict[str, Identity] = {}
    for chunk in _chunks(sorted(people)):
        rows: list[dict[str, Any]] = [
            {
                "platform": platform,
                "platform_user_id": ref,
                "display_name": people[ref],
                "roles": [],
                "preferences": {},
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
            for ref in chunk
        ]
        # One statement compiled once and cached: the rows go as parameters (insertmanyvalues), not as VALUES
        # built into a new statement per batch (compiled anew each time: about 5% of a webhook worker's CPU).
        created = insert(users).on_conflict_do_nothing().returning(*columns)
        found.update(_identities(await session.execute(created, rows)))
        rest = [ref for ref in chunk if ref not in found]
        if rest:
            where = (users.c.platform == platform, users.c.platform_user_id.in_(rest))
            reached = update(users).where(*where).values(active=True, updated_at=now).returning(*columns)
            found.update(_identities(await session.execute(reached)))
    return _all_reached(platform, people, found)


def _all_reached(platform: str, people: Mapping[str, str | None], found: dict[str, Identity]) -> dict[str, Identity]:
    missing = [ref for ref in people if ref not in found]
    if missing:
        raise NotFoundError(f"{platform} users {', '.join(missing)} vanished while being created")
    return found


async def reach_identity(
    session: AsyncSession, platform: str, platform_user_id: str, display_name: str | None = None
) -> Identity:
    """The identity of the user who just wrote: created if new, marked active again if they had gone (race-free)."""
    return (await reach_identities(session, platform, {platform_user_id: display_name}))[platform_user_id]
