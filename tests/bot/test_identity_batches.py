"""User lookups in batches (bot/core/identities.py), on SQLite and PostgreSQL: many people writing at once cost one
read and one write, each gets their own row, a failed batch fails only its own lookups, a cancelled caller
cancels nothing, and two processes reaching overlapping people at once make one row each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.core.identities import IdentityBatcher
from storage.db import create_engine, session_factory
from storage.models import User
from storage.repositories import users as users_repo
from tests import sql_trace


def reads_and_writes(seen: list[str]) -> list[str]:
    """The SELECTs, INSERTs, UPDATEs and DELETEs among statements' first words (not BEGIN, COMMIT, ...)."""
    return [word for word in seen if word in ("SELECT", "INSERT", "UPDATE", "DELETE")]


async def rows_by_ref(sessions: async_sessionmaker[AsyncSession]) -> dict[str, User]:
    """Every user row, by platform user id."""
    async with sessions() as s:
        return {u.platform_user_id: u for u in (await s.scalars(select(User))).all()}


async def test_twenty_first_contacts_at_once_cost_one_read_and_one_insert(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    batcher = IdentityBatcher(sessions)
    refs = [str(100 + i) for i in range(20)]
    with sql_trace.statements(engine) as seen:
        found = await asyncio.gather(*(batcher.identity("telegram", ref, f"U{ref}") for ref in refs))
    assert reads_and_writes(seen) == ["SELECT", "INSERT"]
    rows = await rows_by_ref(sessions)
    assert sorted(rows) == refs
    assert [f.id for f in found] == [rows[ref].id for ref in refs]  # each caller gets their own row
    assert all(f.active and f.roles == [] for f in found)
    assert [rows[ref].display_name for ref in refs] == [f"U{ref}" for ref in refs]
    with sql_trace.statements(engine) as again:
        known = await asyncio.gather(*(batcher.identity("telegram", ref) for ref in refs))
    assert reads_and_writes(again) == ["SELECT"] and known == found  # returning users: one read, no write


async def test_returning_users_are_read_without_a_transaction_on_postgresql(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    batcher = IdentityBatcher(sessions)
    refs = [str(200 + i) for i in range(5)]
    first = await asyncio.gather(*(batcher.identity("telegram", ref) for ref in refs))
    with sql_trace.transactions_begun(engine) as begins, sql_trace.statements(engine) as seen:
        again = await asyncio.gather(*(batcher.identity("telegram", ref) for ref in refs))
    assert again == first and reads_and_writes(seen) == ["SELECT"]
    if engine.dialect.name == "postgresql":  # one statement on the driver: no BEGIN, no ROLLBACK round trips
        assert begins == []
    else:
        assert begins == [1]  # SQLite reads through a session, as before


async def test_a_mixed_batch_keeps_roles_reactivates_the_gone_and_answers_a_repeat_once(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions.begin() as s:
        trader = await users_repo.get_or_create_user(s, "telegram", "1", "Tess")
        gone = await users_repo.get_or_create_user(s, "telegram", "2", "Gus")
        other = await users_repo.get_or_create_user(s, "discord", "3", "Dee")
        await s.execute(update(User).where(col(User.id) == trader.id).values(roles=["trader"]))
        await s.execute(update(User).where(col(User.id) == gone.id).values(active=False))
    batcher = IdentityBatcher(sessions)
    asks = [("telegram", "1"), ("telegram", "2"), ("telegram", "9"), ("telegram", "9"), ("discord", "3")]
    with sql_trace.statements(engine) as seen:
        found = await asyncio.gather(*(batcher.identity(p, r, "New") for p, r in asks))
    # One read per platform; one INSERT (the new one) and one UPDATE (the one who had gone) in one transaction.
    assert sorted(reads_and_writes(seen)) == ["INSERT", "SELECT", "SELECT", "UPDATE"]
    rows = await rows_by_ref(sessions)
    assert found[0] == users_repo.Identity(trader.id, True, ["trader"])  # type: ignore[arg-type]
    assert found[1] == users_repo.Identity(gone.id, True, [])  # type: ignore[arg-type]
    assert found[2] == found[3] and found[2].id == rows["9"].id  # asked twice, one row
    assert found[4].id == other.id
    assert rows["2"].active and rows["2"].display_name == "Gus"  # active again; the name is not overwritten
    assert len(rows) == 4


async def test_lookups_arriving_during_a_batch_go_together_in_the_next(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    reads: list[list[str]] = []
    real = users_repo.find_identities

    async def slow_read(session: AsyncSession, platform: str, refs: Any) -> Any:
        reads.append(sorted(refs))
        await release.wait()
        return await real(session, platform, refs)

    monkeypatch.setattr(users_repo, "find_identities", slow_read)
    batcher = IdentityBatcher(sessions)
    first = asyncio.create_task(batcher.identity("telegram", "1"))
    await asyncio.sleep(0.05)  # the first batch is at the database now
    later = [asyncio.create_task(batcher.identity("telegram", str(i))) for i in range(2, 12)]
    await asyncio.sleep(0.05)
    assert reads == [["1"]]  # nobody joined a batch already running, and nobody started another beside it
    release.set()
    await asyncio.gather(first, *later)
    assert reads == [["1"], sorted(str(i) for i in range(2, 12))]
    assert batcher.batches == 2


async def test_a_failed_batch_fails_its_own_lookups_only_and_the_next_one_works(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = users_repo.reach_identities
    calls = 0

    async def broken_once(session: AsyncSession, platform: str, people: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        return await real(session, platform, people)

    monkeypatch.setattr(users_repo, "reach_identities", broken_once)
    batcher = IdentityBatcher(sessions)
    failed = await asyncio.gather(*(batcher.identity("telegram", r) for r in ("1", "2")), return_exceptions=True)
    assert all(isinstance(f, RuntimeError) for f in failed)
    assert await rows_by_ref(sessions) == {}  # the failed write left nothing behind
    again = await asyncio.gather(*(batcher.identity("telegram", r) for r in ("1", "2")))
    rows = await rows_by_ref(sessions)
    assert [a.id for a in again] == [rows["1"].id, rows["2"].id]


async def test_a_cancelled_caller_cancels_neither_the_batch_nor_the_others(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    real = users_repo.find_identities

    async def slow_read(session: AsyncSession, platform: str, refs: Any) -> Any:
        await release.wait()
        return await real(session, platform, refs)

    monkeypatch.setattr(users_repo, "find_identities", slow_read)
    batcher = IdentityBatcher(sessions)
    impatient = asyncio.create_task(batcher.identity("telegram", "5"))
    patient = asyncio.create_task(batcher.identity("telegram", "5"))
    other = asyncio.create_task(batcher.identity("telegram", "6"))
    await asyncio.sleep(0.05)
    impatient.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    same, six = await patient, await other
    rows = await rows_by_ref(sessions)
    assert (same.id, six.id) == (rows["5"].id, rows["6"].id)


async def test_two_processes_reaching_overlapping_people_at_once_make_one_row_each(
    db_url: str, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    second = create_engine(db_url)  # another process's engine and batcher on the same database
    try:
        here, there = IdentityBatcher(sessions), IdentityBatcher(session_factory(second))
        # Overlapping sets in opposite orders: both write sorted, so neither waits on the other in a cycle.
        mine = [str(i) for i in range(0, 30)]
        theirs = [str(i) for i in reversed(range(15, 45))]
        for _ in range(3):  # several rounds: the second and third find everyone and only read
            a, b = await asyncio.gather(
                asyncio.gather(*(here.identity("telegram", r) for r in mine)),
                asyncio.gather(*(there.identity("telegram", r) for r in theirs)),
            )
            rows = await rows_by_ref(sessions)
            assert len(rows) == 45
            assert [x.id for x in a] == [rows[r].id for r in mine]
            assert [x.id for x in b] == [rows[r].id for r in theirs]
    finally:
        await second.dispose()


async def test_a_write_failing_after_the_insert_leaves_no_row_behind(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The INSERT of the new and the UPDATE of the gone are one transaction, on the driver as through a session."""
    async with sessions.begin() as s:
        gone = await users_repo.get_or_create_user(s, "telegram", "2", "Gus")
        await s.execute(update(User).where(col(User.id) == gone.id).values(active=False))
    monkeypatch.setattr(users_repo, "REACH_UPDATE_SQL", "UPDATE no_such_table SET x = 1")  # the driver's UPDATE
    real_update = users_repo.update

    def broken_update(*args: Any) -> Any:  # the session's UPDATE
        return real_update(*args).where(text("no_such_column = 1"))

    monkeypatch.setattr(users_repo, "update", broken_update)
    batcher = IdentityBatcher(sessions)
    failed = await asyncio.gather(*(batcher.identity("telegram", r) for r in ("1", "2")), return_exceptions=True)
    assert all(isinstance(f, Exception) for f in failed), failed
    rows = await rows_by_ref(sessions)
    assert sorted(rows) == ["2"] and not rows["2"].active  # the new user's INSERT was rolled back with it
