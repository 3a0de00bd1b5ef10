"""SQLite statements take one round trip to aiosqlite's thread and give the same results and errors as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine, session_factory

META = MetaData()
ITEMS = Table("items", META, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(META.create_all)
    yield engine
    await engine.dispose()


async def _driver(engine: AsyncEngine, conn: Any) -> aiosqlite.Connection:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, aiosqlite.Connection)
    return driver


async def test_a_statement_is_one_trip_to_the_thread(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    async with engine.connect() as conn:
        driver = await _driver(engine, conn)
        trips: list[str] = []
        plain = driver._execute

        async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
            trips.append(getattr(fn, "__name__", repr(fn)))
            return await plain(fn, *args, **kwargs)

        monkeypatch.setattr(driver, "_execute", counted)
        assert (await conn.execute(text("SELECT 1, 2"))).all() == [(1, 2)]
        assert len(trips) == 1, trips  # aiosqlite's own cursor: cursor, execute, fetchall, close = 4
        trips.clear()
        await conn.execute(insert(ITEMS).values(name="a"))
        assert len(trips) == 1, trips


async def test_rowcount_lastrowid_returning_and_many_rows_are_as_sqlite_gives_them(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        first = await s.execute(insert(ITEMS).values(name="a"))
        assert first.lastrowid == 1
        await s.execute(insert(ITEMS), [{"name": "b"}, {"name": "c"}, {"name": "d"}])  # executemany
        returned = (await s.execute(insert(ITEMS).values(name="e").returning(ITEMS.c.id, ITEMS.c.name))).all()
        assert returned == [(5, "e")]
        changed = await s.execute(update(ITEMS).where(ITEMS.c.id > 2).values(name=ITEMS.c.name + "!"))
        assert changed.rowcount == 3
    async with sessions() as s:
        result = await s.execute(select(ITEMS.c.name).order_by(ITEMS.c.id))
        assert result.fetchone() == ("a",)
        assert result.fetchmany(2) == [("b",), ("c!",)]
        assert result.fetchall() == [("d!",), ("e!",)]
        assert (await s.execute(select(ITEMS).where(ITEMS.c.id == 99))).all() == []
    async with engine.connect() as conn:  # a server-side cursor (stream) fetches in chunks from the same rows
        streamed = await conn.stream(select(ITEMS.c.id).order_by(ITEMS.c.id).execution_options(yield_per=2))
        assert [row.id async for row in streamed] == [1, 2, 3, 4, 5]


async def test_errors_are_sqlalchemy_errors_and_leave_the_connection_usable(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as s:
        await s.execute(insert(ITEMS).values(name="a"))
    with pytest.raises(IntegrityError, match="UNIQUE"):
        async with sessions.begin() as s:
            await s.execute(insert(ITEMS).values(name="b"))
            await s.execute(insert(ITEMS).values(name="a"))
    with pytest.raises(OperationalError, match="no such table"):
        async with sessions() as s:
            await s.execute(text("SELECT * FROM missing"))
    async with sessions() as s:  # the failed transaction was rolled back whole, and the pool's connection works
        assert (await s.execute(select(ITEMS.c.name))).scalars().all() == ["a"]
        assert (await s.execute(text("PRAGMA busy_timeout"))).scalar_one() == 10_000
        assert (await s.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
