"""SQLite write transactions: serialised in-process, BEGIN IMMEDIATE across connections, no "database is locked"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.db
from bastion.app import Services, build_services
from bastion.serve import build_core
from bastion.settings import Settings
from bot.core.dispatcher import BotCore
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import User


async def _counter_engine(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        await conn.execute(text("INSERT OR IGNORE INTO counter (id, n) VALUES (1, 0)"))
    return engine


async def test_read_modify_write_on_two_engines_loses_no_update(tmp_path: Path) -> None:
    # Two engines are two pools, like two processes: only SQLite's own lock stands between them.
    path = tmp_path / "counter.db"
    engines = [await _counter_engine(path), await _counter_engine(path)]
    factories = [session_factory(e) for e in engines]

    async def increment(i: int) -> None:
        async with factories[i % 2].begin() as session:
            n = (await session.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one()
            await asyncio.sleep(0.001)  # another writer gets every chance to interleave here
            await session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})

    try:
        await asyncio.gather(*(increment(i) for i in range(40)))
        async with factories[0]() as session:
            assert (await session.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one() == 40
    finally:
        for e in engines:
            await e.dispose()


async def test_nested_write_transaction_fails_at_once_and_errors_release_the_lock(tmp_path: Path) -> None:
    engine = await _counter_engine(tmp_path / "nested.db")
    sessions = session_factory(engine)
    try:
        async with sessions.begin():
            with pytest.raises(RuntimeError, match="nested write transaction"):
                async with asyncio.timeout(1), sessions.begin():
                    pass
        with pytest.raises(ZeroDivisionError):
            async with sessions.begin() as session:
                await session.execute(text("UPDATE counter SET n = 99 WHERE id = 1"))
                _ = 1 / 0
        async with asyncio.timeout(2), sessions.begin() as session:  # rolled back, lock released
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 0
            await session.execute(text("UPDATE counter SET n = 7 WHERE id = 1"))
        async with sessions() as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 7
    finally:
        await engine.dispose()


@pytest.fixture
async def first_contact_core(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Services, BotCore]]:
    """Services and a bot core on a SQLite file whose busy timeout is short.

    The busy timeout bounds how long a transaction waits for SQLite's write lock; 500 users at once on a busy
    event loop waited longer than the production 10 s. A 300 ms timeout is the same race, quicker to run.
    """
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    monkeypatch.setattr(storage.db, "SQLITE_BUSY_TIMEOUT_MS", 300)
    s = Settings(database={"url": sqlite_url, "checkpoint_path": tmp_path / "cp.db"})  # type: ignore[arg-type]
    async with build_services(s) as services, sqlite_persistence(tmp_path / "cp.db") as persistence:
        await migrate.upgrade(services.engine)
        yield services, build_core(services, build_chat(services, persistence), persistence.store)


async def test_500_first_contacts_at_once_all_succeed(first_contact_core: tuple[Services, BotCore]) -> None:
    services, core = first_contact_core
    users = await asyncio.gather(
        *(core.user("telegram", str(50_000 + i), f"user {i}") for i in range(500)),
        return_exceptions=True,
    )
    failures = [u for u in users if isinstance(u, BaseException)]
    assert failures == []
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 500
    assert len({u.user_id for u in users}) == 500  # type: ignore[union-attr]


async def test_rollbacks_reach_sqlite_only_when_a_transaction_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiosqlite

    rollbacks: list[bool] = []
    plain = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        rollbacks.append(self.in_transaction)
        await plain(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    path = tmp_path / "rollback.db"
    engine, other = await _counter_engine(path), await _counter_engine(path)
    sessions, others = session_factory(engine), session_factory(other)

    async def n() -> int:
        async with others() as session:
            return int((await session.execute(text("SELECT n FROM counter WHERE id = 1"))).scalar_one())

    try:
        rollbacks.clear()
        async with sessions() as session:  # a read: no transaction on the connection, nothing to roll back
            await session.execute(text("SELECT n FROM counter WHERE id = 1"))
        assert rollbacks == []
        async with sessions() as session:  # a write left uncommitted: pysqlite opened a transaction for it
            await session.execute(text("UPDATE counter SET n = 5 WHERE id = 1"))
        assert rollbacks[:1] == [True]
        with pytest.raises(ZeroDivisionError):
            async with sessions.begin() as session:  # a failing write transaction
                await session.execute(text("UPDATE counter SET n = 7 WHERE id = 1"))
                raise ZeroDivisionError
        assert await n() == 0  # both were rolled back
        async with asyncio.timeout(2), others.begin() as session:  # and neither left SQLite's write lock held
            await session.execute(text("UPDATE counter SET n = 1 WHERE id = 1"))
        assert await n() == 1
    finally:
        await engine.dispose()
        await other.dispose()
