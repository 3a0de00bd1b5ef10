"""The bot core's per-message user lookup (storage/repositories/users.py find_identity / reach_identity) on SQLite
and PostgreSQL: created once under concurrency, a user who had gone is reachable again, roles read as stored."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from storage.models import User
from storage.repositories.users import find_identity, get_or_create_user, reach_identity


async def test_a_new_user_is_created_once_even_when_many_messages_arrive_at_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        assert await find_identity(s, "telegram", "77") is None

    async def reach() -> int:
        async with sessions.begin() as s:
            return (await reach_identity(s, "telegram", "77", "Ann")).id

    ids = await asyncio.gather(*(reach() for _ in range(8)))
    async with sessions() as s:
        rows = (await s.scalars(select(User))).all()
        found = await find_identity(s, "telegram", "77")
    assert len(rows) == 1 and set(ids) == {rows[0].id}
    assert (rows[0].display_name, rows[0].active, rows[0].roles, rows[0].preferences) == ("Ann", True, [], {})
    assert found is not None and (found.id, found.active, found.roles) == (rows[0].id, True, [])


async def test_a_user_who_had_gone_is_reachable_again_with_the_same_row_and_roles(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "discord", "9", "Bo")
        await s.execute(update(User).where(col(User.id) == user.id).values(active=False, roles=["trader"]))
    async with sessions() as s:
        gone = await find_identity(s, "discord", "9")
    assert gone is not None and (gone.id, gone.active, gone.roles) == (user.id, False, ["trader"])
    async with sessions.begin() as s:
        back = await reach_identity(s, "discord", "9", "Someone else")
    assert (back.id, back.active, back.roles) == (user.id, True, ["trader"])
    async with sessions() as s:
        row = await s.get(User, user.id)
    assert row is not None and (row.active, row.display_name) == (True, "Bo")  # the name is not overwritten
    async with sessions() as s:
        assert await find_identity(s, "telegram", "9") is None  # identities are per platform
