"""Async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio.session import _AsyncSessionContextManager

from storage import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 10_000
DEFAULT_POOL_SIZE = 5
# Execution option of the connections a SQLite write transaction (`sessions.begin()`) runs on.
_IMMEDIATE = "bastion_sqlite_immediate"


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, *, echo: bool = False, pool_size: int | None = None) -> AsyncEngine:
    """An async engine for `url` (already normalised by settings); creates a SQLite file's folder.

    `pool_size` is the connections a server database keeps open: the concurrency the process has (settings size
    it from the inbox and outbox slots). No ping per checkout: a dropped server connection fails the one
    operation that meets it, SQLAlchemy then invalidates every pooled connection opened before the drop, and the
    next checkouts connect afresh.
    """
    parsed = make_url(url)
    # A ping per checkout is a BEGIN; ROLLBACK round trip before every transaction: a third of them on the
    # webhook's path, to guard against a drop that the pool's disconnect handling already recovers from.
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        size = pool_size or DEFAULT_POOL_SIZE
        kwargs["pool_size"] = size
        # Bursts beyond the slots (a turn's conversation lock beside its session) borrow rather than queue.
        kwargs["max_overflow"] = size * 2
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "do_connect", sqlite_driver.connect)
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        _skip_idle_rollbacks(engine.sync_engine.dialect)
    return engine


def _skip_idle_rollbacks(dialect: Any) -> None:
    """Roll back a SQLite connection only when a transaction is open on it.

    A read session ends with two rollbacks (the session's, then the pool's reset on checkin), and on a connection
    outside any transaction (pysqlite begins one only at the first write) sqlite3 skips both: each is a no-op
    that still costs aiosqlite a round trip to its thread, a third of a short read session's CPU. Whether a
    transaction is open is the driver's own flag (sqlite3's `in_transaction`), read on the loop while the
    connection is idle; when it cannot be read the rollback goes ahead."""
    rollback = dialect.do_rollback

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            idle = dialect.get_driver_connection(dbapi_connection).in_transaction is False
        except Exception:  # closed, or not the driver expected: roll back as always
            idle = False
        if not idle:
            rollback(dbapi_connection)

    dialect.do_rollback = do_rollback


def _on_sqlite_begin(conn: Connection) -> None:
    # pysqlite opens a DEFERRED transaction at the first write and reads before it run outside any transaction:
    # a read-modify-write could then interleave with another writer. A write transaction takes SQLite's write
    # lock up front instead, so everything it reads stays true until it commits (and the busy timeout applies).
    if conn.get_execution_options().get(_IMMEDIATE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# One in-process write queue per SQLite engine. SQLite has a single writer; without the queue every waiting
# transaction holds a pooled connection and polls the file lock from its thread, unfairly, and gives up with
# "database is locked" after the busy timeout when the event loop is slow to finish the holder's transaction.
_write_locks: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()
_writing: contextvars.ContextVar[asyncio.Task[Any] | None] = contextvars.ContextVar("sqlite_writer", default=None)


class _SerialisedWrite(_AsyncSessionContextManager[AsyncSession]):
    """`sessions.begin()` on SQLite: wait for this process's turn to write, then BEGIN IMMEDIATE, commit, release."""

    __slots__ = ("_lock", "_token")

    def __init__(self, session: AsyncSession, lock: asyncio.Lock) -> None:
        super().__init__(session)
        self._lock = lock
        self._token: contextvars.Token[asyncio.Task[Any] | None] | None = None

    async def __aenter__(self) -> AsyncSession:
        task = asyncio.current_task()
        if task is not None and _writing.get() is task:
            # The outer transaction holds SQLite's only write lock: the inner one could never get it.
            raise RuntimeError("nested write transaction on SQLite: finish the outer sessions.begin() block first")
        await self._lock.acquire()
        self._token = _writing.set(task)
        try:
            return await super().__aenter__()
        except BaseException:
            self._release()
            raise

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        finally:
            self._release()

    def _release(self) -> None:
        if self._token is not None:
            _writing.reset(self._token)
            self._token = None
        self._lock.release()


class Sessions(async_sessionmaker[AsyncSession]):
    """Session factory; on SQLite, `begin()` write transactions are queued in-process and BEGIN IMMEDIATE."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, expire_on_commit=False)
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_bind = engine.execution_options(**{_IMMEDIATE: True}) if self._sqlite else engine
        self._write_lock = _write_locks.setdefault(engine.sync_engine, asyncio.Lock()) if self._sqlite else None

    def begin(self) -> _AsyncSessionContextManager[AsyncSession]:
        """A new session in a transaction that commits at the end of the block (rolls back on error)."""
        if self._write_lock is None:
            return super().begin()
        return _SerialisedWrite(self(bind=self._write_bind), self._write_lock)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit; SQLite write transactions are serialised."""
    return Sessions(engine)
