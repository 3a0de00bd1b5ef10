"""Cron jobs in the scheduler (the daily scan): stored, kept across a restart, re-timed when changed, a run missed
while the deployment was down made up once, a bad expression refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.scheduler import JobScheduler


async def test_cron_jobs_survive_restarts_and_catch_up_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
    runs = 0

    async def scan() -> None:
        nonlocal runs
        runs += 1

    first = JobScheduler(url, key="c1", timezone="Asia/Tokyo")
    first.cron("scan", "0 8 * * *", scan)
    scheduler = first.start()
    job = scheduler.get_job("c1:scan")
    next_run = job.next_run_time
    assert (next_run.hour, next_run.minute, next_run.utcoffset()) == (8, 0, timedelta(hours=9))  # 08:00 in Tokyo
    await first.stop()

    second = JobScheduler(url, key="c1", timezone="Asia/Tokyo")
    second.cron("scan", "0 8 * * *", scan)
    scheduler = second.start()
    assert scheduler.get_job("c1:scan").next_run_time == next_run  # the stored schedule is kept
    # The deployment was down through this morning's run: on the next start it runs once, not once per day missed.
    scheduler.modify_job("c1:scan", next_run_time=datetime.now(UTC) - timedelta(hours=3))
    await second.stop()
    assert runs == 0

    third = JobScheduler(url, key="c1", timezone="Asia/Tokyo")
    third.cron("scan", "0 8 * * *", scan)
    scheduler = third.start()
    await asyncio.sleep(0.5)
    assert runs == 1
    assert scheduler.get_job("c1:scan").next_run_time > datetime.now(UTC)
    await third.stop()

    fourth = JobScheduler(url, key="c1", timezone="Asia/Tokyo")
    fourth.cron("scan", "30 6 * * 1", scan)  # a changed expression re-times the job
    scheduler = fourth.start()
    moved = scheduler.get_job("c1:scan").next_run_time
    assert (moved.weekday(), moved.hour, moved.minute) == (0, 6, 30)
    await fourth.stop()
    assert runs == 1


def test_a_bad_cron_expression_is_refused_at_registration(tmp_path: Path) -> None:
    jobs = JobScheduler(f"sqlite+aiosqlite:///{tmp_path}/app.db")

    async def nothing() -> None:
        return None

    with pytest.raises(ValueError):
        jobs.cron("scan", "0 25 * * *", nothing)
