"""Benchmark: CPU per per-user rate-limit check, in memory (SQLite deployments) and in PostgreSQL (many workers).

The database check is what the access chain awaits for every message and button press on PostgreSQL:
`SharedUserRateLimiter.take` — one upsert on the limiter's own autocommit connection. Measured one check at a
time and `--concurrency` at once (a worker handles that many updates together), over `--users` users at the
default limits (20 a minute, a burst of 5), so checks are both allowed and refused. For comparison the same
statement through SQLAlchemy (`exec_driver_sql`, its lightest path) on an autocommit connection, which the store
avoids, and the in-memory
bucket. CPU is this process's (user + system) per check; the server's own work is not in it. Transactions per
check come from the server's counters (pg_stat_database) once the limiter's connection has closed.

Run: BASTION_TEST_POSTGRES_URL=postgresql+asyncpg://… python tests/bench/bench_ratelimit.py [--checks 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.core.userlimit import SharedUserRateLimiter, UserRateLimiter
from storage import migrate
from storage.db import create_engine
from storage.repositories.rate_buckets import TAKE_SQL, BucketStore
from tests.conftest import PG_URL_VAR, fresh_postgres_database

RATE, BURST = 20.0, 5  # the defaults of BASTION_BOT__RATE_PER_MINUTE and BASTION_BOT__BURST


async def _timed(
    check: Callable[[str], Awaitable[object]], checks: int, users: int, concurrency: int
) -> tuple[float, float]:
    """(CPU µs, wall µs) per check, `concurrency` checks in flight at once."""
    keys = [f"telegram:{i}" for i in range(users)]

    async def lane(start: int) -> None:
        for i in range(start, checks, concurrency):
            await check(keys[i % users])

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane(i) for i in range(concurrency)))
    return 1e6 * (time.process_time() - cpu) / checks, 1e6 * (time.perf_counter() - wall) / checks


async def _commits(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            sql = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            return int((await conn.execute(text(sql))).scalar_one())
    finally:
        await engine.dispose()


async def _round(url: str, checks: int, users: int, concurrency: int) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    memory = UserRateLimiter(RATE, BURST)
    out["in memory (SQLite: one process)"] = await _timed(memory.take, checks, users, 1)
    shared = SharedUserRateLimiter(BucketStore(url), RATE, BURST)
    try:
        await shared.take("warm-up")  # connect and prepare outside the measurement
        out["database, one at a time"] = await _timed(shared.take, checks, users, 1)
        out[f"database, {concurrency} at once"] = await _timed(shared.take, checks, users, concurrency)
    finally:
        await shared.close()
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:

            async def through_sqlalchemy(key: str) -> object:
                return (await conn.exec_driver_sql(TAKE_SQL, (key, float(BURST), RATE / 60, None))).one()

            await through_sqlalchemy("warm-up")
            out["same statement via SQLAlchemy"] = await _timed(through_sqlalchemy, checks, users, 1)
    finally:
        await engine.dispose()
    return out


async def _transactions_per_check(url: str, checks: int) -> float:
    before = await _commits(url)
    shared = SharedUserRateLimiter(BucketStore(url), RATE, BURST)
    for i in range(checks):
        await shared.take(f"telegram:{i % 50}")
    await shared.close()  # a closing backend reports its counters
    await asyncio.sleep(1.5)
    return (await _commits(url) - before - 1) / checks  # less the one that read `before`


async def main(checks: int, users: int, concurrency: int, rounds: int) -> None:
    """Print CPU and wall time per check for each way, `rounds` times."""
    if not os.environ.get(PG_URL_VAR):
        raise SystemExit(f"{PG_URL_VAR} must name a PostgreSQL server (the buckets live there)")
    async with fresh_postgres_database() as url:
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        print(f"{checks} checks over {users} users, limits {RATE:g}/min burst {BURST}; load {os.getloadavg()[0]:.2f}")
        for n in range(1, rounds + 1):
            for name, (cpu, wall) in (await _round(url, checks, users, concurrency)).items():
                print(f"round {n}  {name:<40} {cpu:7.1f} µs CPU/check  {wall:7.1f} µs wall/check")
        per_check = await _transactions_per_check(url, 1000)
        print(f"transactions per database check: {per_check:.3f} (pg_stat_database, over 1000 checks)")
        print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=2000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.checks, args.users, args.concurrency, args.rounds))
