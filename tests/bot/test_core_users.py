"""The core's user lookup on each message: statements per first contact and per cached message, a user who had
gone (blocked the bot) is reachable again when they write."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from bastion.app import Services
from bot.core.dispatcher import BotCore
from bot.core.registry import Permission
from storage.models import User
from storage.repositories import users as users_repo
from tests import sql_trace
from tests.bot.test_core import RecordingReplier, core_on, grant_role, said

__all__ = ["core_on"]  # the fixture, shared with test_core
CAROL = 1003


def statements(services: Services) -> AbstractContextManager[list[str]]:
    """The SQL statements the app database runs inside the block, by first word."""
    return sql_trace.statements(services.engine)


async def test_a_first_contact_costs_one_read_and_one_insert_and_later_messages_none(
    core_on: tuple[Services, BotCore],
) -> None:
    services, core = core_on
    replier = RecordingReplier()
    with statements(services) as first:
        await core.handle(said(CAROL, "/help"), replier)
    # The read that finds nobody, then one INSERT ... RETURNING (no read-back, no separate UPDATE).
    assert [s for s in first if s in ("SELECT", "INSERT", "UPDATE")] == ["SELECT", "INSERT"]
    with statements(services) as later:
        await core.handle(said(CAROL, "/help"), replier)
    assert later == []  # the cached identity: no session at all
    assert len([o for o in replier.sent if "**Commands**" in o.text]) == 2
    async with services.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 1


async def test_a_user_who_had_gone_is_active_again_when_they_write(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    user_id = await grant_role(services, CAROL)
    async with services.sessions.begin() as s:
        await s.execute(update(User).where(col(User.id) == user_id).values(active=False))  # they blocked the bot
    replier = RecordingReplier()
    await core.handle(said(CAROL, "/help"), replier)
    assert any("**Commands**" in o.text for o in replier.sent)
    async with services.sessions() as s:
        rows = (await s.scalars(select(User))).all()
    assert [(r.id, r.active) for r in rows] == [(user_id, True)]


async def test_twenty_people_writing_at_once_are_looked_up_in_one_read_and_created_in_one_insert(
    core_on: tuple[Services, BotCore],
) -> None:
    services, core = core_on
    repliers = [RecordingReplier() for _ in range(20)]
    with statements(services) as seen:
        await asyncio.gather(*(core.handle(said(2000 + i, "/help"), r) for i, r in enumerate(repliers)))
    # One by one this was 20 reads and 20 write transactions, queued behind SQLite's single writer.
    assert [s for s in seen if s in ("SELECT", "INSERT", "UPDATE")] == ["SELECT", "INSERT"]
    assert all(any("**Commands**" in o.text for o in r.sent) for r in repliers)
    async with services.sessions() as s:
        ids = {u.platform_user_id: u.id for u in (await s.scalars(select(User))).all()}
    assert sorted(ids) == sorted(str(2000 + i) for i in range(20))
    assert [(await core.user("telegram", str(2000 + i))).user_id for i in range(20)] == [
        ids[str(2000 + i)] for i in range(20)
    ]


async def test_a_role_changed_while_a_lookup_was_out_is_not_hidden_by_caching_that_lookup(
    core_on: tuple[Services, BotCore], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, core = core_on
    await grant_role(services, CAROL)
    release, reading = asyncio.Event(), asyncio.Event()
    real = users_repo.find_identities

    async def slow_read(session: Any, platform: str, refs: Any) -> Any:
        found = await real(session, platform, refs)  # read before the grant below
        reading.set()
        await release.wait()
        return found

    monkeypatch.setattr(users_repo, "find_identities", slow_read)
    lookup = asyncio.create_task(core.user("telegram", str(CAROL)))
    await reading.wait()
    await grant_role(services, CAROL, "trader")  # /grant meanwhile: it drops the cached permission
    core.forget_user("telegram", str(CAROL))
    release.set()
    assert (await lookup).permission is Permission.ANYONE  # what that read saw
    monkeypatch.setattr(users_repo, "find_identities", real)
    assert (await core.user("telegram", str(CAROL))).permission is Permission.TRADER  # read again, not cached
