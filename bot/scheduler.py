"""Scheduled jobs with one leader per deployment.

APScheduler 3 (`AsyncIOScheduler`) keeps the jobs in the app database (`SQLAlchemyJobStore`), so schedules
survive restarts and a missed run is coalesced into one, never replayed in a burst. Exactly one process runs
them: the holder of a PostgreSQL advisory lock taken on a dedicated connection. The lock dies with that
connection, so when the leader's process dies (even by SIGKILL) PostgreSQL frees it and a standby, which
retries every `check_s`, takes over. On SQLite the deployment is one process, which always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from engine.reports.schedule import crontab_trigger

log = logging.getLogger(__name__)
# A job's result is ignored (LimitExpirySweep.run, for one, returns how many entries it expired).
Handler = Callable[[], Awaitable[object]]
JOBS_TABLE = "apscheduler_jobs"

# The job store pickles a job as a textual reference to a module-level function plus its arguments, so a
# stored job names its handler by (scheduler key, job name) and each process registers what those mean.
_HANDLERS: dict[tuple[str, str], Handler] = {}


def sync_database_url(url: str) -> str:
    """The synchronous SQLAlchemy URL of an async one (the job store is synchronous): aiosqlite→sqlite,
    asyncpg→psycopg (psycopg 3, already installed for the PostgreSQL checkpointer)."""
    parsed = make_url(url)
    driver = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}.get(parsed.drivername)
    if driver is None:
        raise ValueError(f"no synchronous driver known for {parsed.drivername!r}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def job_store_url(url: str) -> str:
    """Where the job store lives: the app database on PostgreSQL; on SQLite a file of its own beside it.

    The job store is synchronous and runs on the event loop. Sharing the app's SQLite file, its writes wait for
    the app's writers on SQLite's one write lock, up to the 5 s busy timeout, with the whole loop blocked (seen
    as 5-25 s stalls of every update in bench_telegram); in its own file only the scheduler writes."""
    parsed = make_url(sync_database_url(url))
    if parsed.drivername != "sqlite" or parsed.database in (None, "", ":memory:"):
        return parsed.render_as_string(hide_password=False)
    database = str(parsed.database)
    stem = database[: -len(".db")] if database.endswith(".db") else database
    return parsed.set(database=f"{stem}.jobs.db").render_as_string(hide_password=False)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for `name`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock(Protocol):
    """A lock at most one process holds."""

    async def acquire(self) -> bool:
        """Try once; True when this process now holds the lock."""
        ...

    async def alive(self) -> bool:
        """True while the lock is still held (its connection answers)."""
        ...

    async def release(self) -> None:
        """Let go of the lock (if held) and its connection."""
        ...

    async def dispose(self) -> None:
        """Release and free everything (at shutdown)."""
        ...


class LocalLeaderLock:
    """SQLite: one process per deployment, so it always leads."""

    async def acquire(self) -> bool:
        """Always granted."""
        return True

    async def alive(self) -> bool:
        """Always held."""
        return True

    async def release(self) -> None:
        """Nothing to release."""

    async def dispose(self) -> None:
        """Nothing to free."""


class PostgresLeaderLock:
    """A session-level advisory lock on a connection of its own, outside the pool."""

    def __init__(self, url: str, name: str, *, timeout_s: float = 5.0) -> None:
        # TCP keepalives let PostgreSQL notice a leader whose host vanished (no FIN) within ~20 s, not hours.
        settings = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}
        self.engine = create_async_engine(
            url, poolclass=NullPool, connect_args={"server_settings": settings, "command_timeout": timeout_s}
        )
        self.key = lock_key(name)
        self.timeout_s = timeout_s
        self._conn: AsyncConnection | None = None
        self._held = False

    async def _scalar(self, sql: str) -> Any:
        if self._conn is None:
            self._conn = await self.engine.connect()
        value = (await self._conn.execute(text(sql), {"k": self.key})).scalar()
        await self._conn.commit()  # the lock is session-level: no transaction stays open "idle in transaction"
        return value

    async def acquire(self) -> bool:
        """`pg_try_advisory_lock`: never waits."""
        try:
            self._held = bool(await asyncio.wait_for(self._scalar("SELECT pg_try_advisory_lock(:k)"), self.timeout_s))
        except Exception:
            log.warning("leader lock: database unreachable", exc_info=True)
            await self._drop()
            return False
        return self._held

    async def alive(self) -> bool:
        """The lock lives as long as its session: a query that answers proves both."""
        if not self._held:
            return False
        try:
            await asyncio.wait_for(self._scalar("SELECT 1"), self.timeout_s)
            return True
        except Exception:
            log.warning("leader lock: connection lost", exc_info=True)
            await self._drop()
            return False

    async def release(self) -> None:
        """Unlock and close the connection."""
        if self._held and self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._scalar("SELECT pg_advisory_unlock(:k)"), self.timeout_s)
        await self._drop()

    async def _drop(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def dispose(self) -> None:
        """Release and close the engine."""
        await self.release()
        await self.engine.dispose()


def leader_lock(database_url: str, name: str = "bastion:leader") -> LeaderLock:
    """The leader lock of the database: an advisory lock on PostgreSQL, always held on SQLite."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresLeaderLock(database_url, name)
    return LocalLeaderLock()


class Leadership:
    """Runs `lead(term)` while this process holds the leader lock; stands by (retrying) while another does."""

    def __init__(self, lock: LeaderLock, *, check_s: float = 5.0) -> None:
        self.lock = lock
        self.check_s = check_s
        self.is_leader = False
        self.terms = 0  # how many times this process was elected

    async def run(self, stop: asyncio.Event, lead: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        """Until `stop`: acquire, lead until the lock is lost or `stop`, step down, repeat."""
        while not stop.is_set():
            if not await self.lock.acquire():
                await _wait(stop, self.check_s)
                continue
            self.is_leader, self.terms = True, self.terms + 1
            log.info("this process is the leader (term %d)", self.terms)
            term = asyncio.Event()
            task = asyncio.create_task(lead(term), name="leader")
            try:
                while not stop.is_set() and not task.done():
                    await _wait(stop, self.check_s)
                    if not stop.is_set() and not await self.lock.alive():
                        log.warning("leader lock lost: stepping down")
                        break
            finally:
                term.set()
                try:
                    await task
                except Exception:
                    log.exception("leader duties failed")
                self.is_leader = False
                await self.lock.release()


async def run_job(key: str, name: str) -> None:
    """What a stored job calls: the handler this process registered for (key, name)."""
    handler = _HANDLERS.get((key, name))
    if handler is None:
        log.warning("scheduled job %s/%s has no handler in this process; skipped", key, name)
        return
    await handler()


class JobScheduler:
    """The deployment's interval and cron jobs in an `AsyncIOScheduler` over the app database's job store."""

    def __init__(self, database_url: str, *, key: str = "bastion", timezone: str = "UTC") -> None:
        self.key = key
        self.url = job_store_url(database_url)
        self.timezone = timezone
        self._intervals: dict[str, float] = {}
        self._crons: dict[str, str] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def every(self, name: str, seconds: float, handler: Handler) -> None:
        """Run `handler` every `seconds` (first run at once for a new job); failures are logged."""
        self._guard(name, handler)
        self._intervals[name] = seconds

    def cron(self, name: str, expression: str, handler: Handler) -> None:
        """Run `handler` at the times of a crontab `expression` in the scheduler's time zone; ValueError when
        the expression is not one."""
        crontab_trigger(expression, self.timezone)
        self._guard(name, handler)
        self._crons[name] = expression

    def _guard(self, name: str, handler: Handler) -> None:
        async def guarded() -> None:
            self._running += 1
            self._idle.clear()
            try:
                await handler()
            except Exception:  # one failed run must not end the schedule
                log.exception("scheduled job %s failed", name)
            finally:
                self._running -= 1
                if self._running == 0:
                    self._idle.set()

        _HANDLERS[(self.key, name)] = guarded

    def start(self) -> AsyncIOScheduler:
        """Open the job store (creating its table), add or re-time the jobs, and start running them."""
        store = SQLAlchemyJobStore(url=self.url, tablename=JOBS_TABLE, engine_options={"pool_pre_ping": True})
        scheduler = AsyncIOScheduler(
            jobstores={"default": store},
            timezone=self.timezone,
            # coalesce: after downtime one run, not one per missed interval; grace: a run late by up to one
            # interval still happens.
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        scheduler.start(paused=True)
        for name, seconds in self._intervals.items():
            job_id = f"{self.key}:{name}"
            existing = scheduler.get_job(job_id)
            interval = timedelta(seconds=seconds)
            if existing is not None and getattr(existing.trigger, "interval", None) == interval:
                continue  # keep its stored next run time: the schedule survives the restart
            scheduler.add_job(
                run_job,
                IntervalTrigger(seconds=seconds, timezone=self.timezone),
                args=[self.key, name],
                id=job_id,
                name=name,
                replace_existing=True,
                next_run_time=datetime.now(UTC),
                misfire_grace_time=max(1, int(seconds)),
            )
        for name, expression in self._crons.items():
            job_id = f"{self.key}:{name}"
            trigger = crontab_trigger(expression, self.timezone)
            existing = scheduler.get_job(job_id)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue  # same schedule: its stored next run stays, so a restart neither repeats nor skips it
            # A run missed by up to a day (the process was down at the time) still happens once on start.
            scheduler.add_job(
                run_job,
                trigger,
                args=[self.key, name],
                id=job_id,
                name=name,
                replace_existing=True,
                misfire_grace_time=86_400,
            )
        scheduler.resume()
        self._scheduler = scheduler
        return scheduler

    async def stop(self, wait_s: float = 30.0) -> None:
        """Stop starting jobs, let running ones finish (up to `wait_s`), and close the job store."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.pause()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), wait_s)
        scheduler.shutdown(wait=False)

    async def lead(self, term: asyncio.Event) -> None:
        """Leader duties: run the jobs until `term` is set."""
        self.start()
        try:
            await term.wait()
        finally:
            await self.stop()


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
