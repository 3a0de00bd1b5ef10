"""Scheduler: one leader per PostgreSQL (advisory lock, taken over when the leader dies), jobs that survive a
restart in the app database, and missed runs coalesced."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.scheduler import (
    JobScheduler,
    Leadership,
    LocalLeaderLock,
    PostgresLeaderLock,
    leader_lock,
    sync_database_url,
)


def test_sync_url_of_each_async_driver() -> None:
    assert sync_database_url("sqlite+aiosqlite:///data/b.db") == "sqlite:///data/b.db"
    assert sync_database_url("postgresql+asyncpg://u:secret@h:5433/db") == "postgresql+psycopg://u:secret@h:5433/db"
    with pytest.raises(ValueError):
        sync_database_url("mysql+aiomysql://h/db")


def test_sqlite_is_one_process_that_always_leads(tmp_path: Path) -> None:
    assert isinstance(leader_lock(f"sqlite+aiosqlite:///{tmp_path}/a.db"), LocalLeaderLock)


@pytest.mark.postgres
async def test_one_advisory_lock_holder_and_release_frees_it(postgres_url: str) -> None:
    a, b = PostgresLeaderLock(postgres_url, "t:leader"), PostgresLeaderLock(postgres_url, "t:leader")
    try:
        assert await a.acquire()
        assert not await b.acquire()
        assert await a.alive() and not await b.alive()
        await a.release()
        assert await b.acquire()
        assert not await a.acquire()
    finally:
        await a.dispose()
        await b.dispose()


HOLDER = """
import asyncio, sys
from bot.scheduler import PostgresLeaderLock
async def main():
    lock = PostgresLeaderLock(sys.argv[1], "t:killed")
    assert await lock.acquire()
    print("held", flush=True)
    await asyncio.sleep(120)
asyncio.run(main())
"""


@pytest.mark.postgres
async def test_sigkill_of_the_leader_lets_a_standby_lead_within_seconds(postgres_url: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, postgres_url, stdout=asyncio.subprocess.PIPE, cwd=os.getcwd()
    )
    standby = Leadership(PostgresLeaderLock(postgres_url, "t:killed"), check_s=0.5)
    stop = asyncio.Event()
    elected = asyncio.Event()

    async def lead(term: asyncio.Event) -> None:
        elected.set()
        await term.wait()

    try:
        assert proc.stdout is not None and (await proc.stdout.readline()).strip() == b"held"
        runner = asyncio.create_task(standby.run(stop, lead))
        await asyncio.sleep(1.5)
        assert not standby.is_leader and not elected.is_set()  # the live leader keeps it
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await asyncio.wait_for(elected.wait(), 30)
        assert time.monotonic() - killed_at < 10
        assert standby.is_leader and standby.terms == 1
        stop.set()
        await runner
        assert not standby.is_leader
    finally:
        if proc.returncode is None:
            proc.kill()
        stop.set()


@pytest.mark.postgres
async def test_two_candidates_never_lead_at_once(postgres_url: str) -> None:
    stop = asyncio.Event()
    leading: list[str] = []
    overlaps = 0

    def candidate(name: str) -> Leadership:
        return Leadership(PostgresLeaderLock(postgres_url, "t:pair"), check_s=0.1)

    async def lead_as(name: str, term: asyncio.Event) -> None:
        nonlocal overlaps
        leading.append(name)
        overlaps += len(leading) > 1
        await asyncio.sleep(0.3)  # then step down by ending its duties: the other may take over
        leading.remove(name)

    a, b = candidate("a"), candidate("b")
    tasks = [
        asyncio.create_task(a.run(stop, lambda t: lead_as("a", t))),
        asyncio.create_task(b.run(stop, lambda t: lead_as("b", t))),
    ]
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*tasks)
    for c in (a, b):
        assert isinstance(c.lock, PostgresLeaderLock)
        await c.lock.dispose()
    assert overlaps == 0
    assert a.terms + b.terms >= 4  # leadership changed hands several times


async def test_jobs_run_and_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    runs: list[float] = []

    async def tick() -> None:
        runs.append(time.monotonic())

    first = JobScheduler(url, key="t1")
    first.every("tick", 3600, tick)
    scheduler = first.start()
    await asyncio.sleep(0.3)
    assert len(runs) == 1  # a new job runs at once
    next_run = scheduler.get_job("t1:tick").next_run_time
    await first.stop()

    second = JobScheduler(url, key="t1")
    second.every("tick", 3600, tick)
    scheduler = second.start()
    await asyncio.sleep(0.3)
    assert len(runs) == 1  # not re-run: the stored schedule is kept
    assert scheduler.get_job("t1:tick").next_run_time == next_run
    await second.stop()

    third = JobScheduler(url, key="t1")
    third.every("tick", 60, tick)  # a changed interval re-times the job
    scheduler = third.start()
    await asyncio.sleep(0.3)
    assert len(runs) == 2
    assert scheduler.get_job("t1:tick").trigger.interval == timedelta(seconds=60)
    await third.stop()


async def test_missed_runs_after_downtime_are_coalesced_into_one(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    runs = 0

    async def tick() -> None:
        nonlocal runs
        runs += 1

    # A 60 s interval, not 2 s: the scheduler dates the runs from its own later clock, so with 2 s a slow start
    # could land the next run inside the wait below (two runs) or the coalesced one past its 2 s grace (none).
    first = JobScheduler(url, key="t2")
    first.every("tick", 60, tick)
    scheduler = first.start()
    await asyncio.sleep(0.2)
    # The deployment was down for ten intervals: the stored next run lies 600 s in the past.
    scheduler.modify_job("t2:tick", next_run_time=datetime.now(UTC) - timedelta(seconds=600))
    await first.stop()
    runs = 0
    second = JobScheduler(url, key="t2")
    second.every("tick", 60, tick)
    scheduler = second.start()
    await asyncio.sleep(0.5)
    await second.stop()
    assert runs == 1
