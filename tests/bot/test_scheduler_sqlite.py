"""The scheduler on SQLite: its synchronous job store never blocks the event loop behind the app's writers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import text

from bot.scheduler import JobScheduler, job_store_url
from storage.db import create_engine


def test_the_sqlite_job_store_is_a_file_of_its_own() -> None:
    assert job_store_url("sqlite+aiosqlite:///data/bastion.db") == "sqlite:///data/bastion.jobs.db"
    assert job_store_url("sqlite+aiosqlite:///data/app") == "sqlite:///data/app.jobs.db"
    assert job_store_url("sqlite+aiosqlite://") == "sqlite://"
    assert job_store_url("postgresql+asyncpg://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"


async def test_a_job_store_write_does_not_wait_for_a_long_app_transaction(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    app = create_engine(url)
    ran = asyncio.Event()

    async def tick() -> None:
        ran.set()

    async with app.connect() as conn:
        await conn.execute(text("CREATE TABLE busy (n INTEGER)"))
        await conn.commit()
        await conn.execute(text("BEGIN IMMEDIATE"))  # an app writer holds SQLite's write lock for a while
        await conn.execute(text("INSERT INTO busy VALUES (1)"))
        jobs = JobScheduler(url, key="busy")
        jobs.every("tick", 3600, tick)
        started = time.monotonic()
        jobs.start()  # creates its table and writes the job's next run while the app's lock is held
        await asyncio.wait_for(ran.wait(), 3)
        blocked = time.monotonic() - started
        await conn.rollback()
    await jobs.stop()
    await app.dispose()
    # Sharing the app's file, the loop stood still for SQLite's 5 s busy timeout; 3 s (not 1 s) leaves a loaded
    # machine time to create the job store's own file, and still tells the two apart.
    assert blocked < 3.0
