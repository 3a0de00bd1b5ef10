"""Checkpointer and store: SQLite on their own file by default, PostgreSQL when the database is PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from functools import partial
from inspect import signature
from pathlib import Path
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.store.base import BaseStore, Op, Result
from langgraph.store.sqlite import SqliteStore
from sqlalchemy.engine import make_url

from agents.services import PersistenceSettings

T = TypeVar("T")
log = logging.getLogger(__name__)
# The WAL is checkpointed on the persistence thread when about this many pages were added since the last time:
# SQLite's own autocheckpoint size (4 MB of 4 KiB pages). A turn adds 3-6 pages on a short thread and more on a long
# one, so the number of inline writes between two checkpoints is measured: the first comes after
# WAL_CHECKPOINT_FIRST writes, and each sets the next interval from the pages the writes since the last one added.
WAL_CHECKPOINT_PAGES = 1000
WAL_CHECKPOINT_FIRST = 16
WAL_CHECKPOINT_MAX = 1024  # inline writes at most between two checkpoints


@dataclass
class Persistence:
    """The graph's checkpointer (conversation state) and store (per-user preferences)."""

    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore


def psycopg_url(sqlalchemy_url: str) -> str:
    """A libpq URL (what psycopg wants) from a SQLAlchemy postgresql+asyncpg URL."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PersistenceThread(Executor):
    """One thread running the persistence calls in order (SQLite has one writer; each connection stays on it).

    `call` hands a function to the thread and wakes the loop with its result through one loop future and one
    call_soon_threadsafe; run_in_executor on a ThreadPoolExecutor adds a concurrent Future, the callbacks that
    chain it to a loop future and the pool's bookkeeping (about 0.05 ms more CPU per hop). `submit` is the
    Executor interface (run_in_executor) for everything else.
    """

    def __init__(self, name: str = "bastion-checkpoints") -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run `fn` on the thread after what was handed to it before; its future."""
        if self._closed:
            raise RuntimeError("the persistence thread is shut down")
        future: Future[T] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._jobs.put(job)
        return future

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` on the thread (after what was handed to it before) and return its result on the loop."""
        if self._closed:
            raise RuntimeError("the persistence thread is shut down")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[T] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if waiter.done():  # the caller was cancelled meanwhile; the call itself ran
                return
            if error is None:
                waiter.set_result(result)
            else:
                waiter.set_exception(error)

        def job() -> None:
            error: BaseException | None = None
            result: Any = None
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                error = exc
            with suppress(RuntimeError):  # a closed loop: nobody waits for the result any more
                loop.call_soon_threadsafe(settle, result, error)

        self._jobs.put(job)
        return await waiter

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Run what was handed over, then stop the thread (joined when `wait`)."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
        if wait and self._thread is not threading.current_thread():
            self._thread.join()


class _InlineReader(SqliteSaver):
    """The latest-checkpoint read of `ThreadedSqliteSaver`, run on the event loop on a connection of its own."""

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint and its pending writes, read in one transaction (one WAL snapshot)."""
        self.conn.execute("BEGIN")
        try:
            return super().get_tuple(config)
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")


class _PrunedSqliteSaver(SqliteSaver):
    """SqliteSaver whose `put` keeps only the thread's `keep` latest checkpoints (None: the whole history)."""

    def __init__(self, conn: sqlite3.Connection, *, serde: Any = None, keep: int | None = 1) -> None:
        super().__init__(conn, serde=serde)
        self.keep = keep

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and drop the thread's checkpoints (and their writes) beyond the `keep` latest, in one
        transaction.

        Every checkpoint holds the whole conversation, so a history of them grows with the square of its length;
        resuming (an approval, the next turn) reads only the latest one and its pending writes. The older rows are
        deleted first, uncommitted, and the saver's own insert commits both: one commit per turn instead of two,
        and a failed insert rolls the deletes back with it."""
        if self.keep is None:
            return super().put(config, checkpoint, metadata, new_versions)
        conf = config["configurable"]
        args = (str(conf["thread_id"]), conf.get("checkpoint_ns", ""))
        try:
            with self.cursor(transaction=False) as cur:
                if (oldest_kept := self._oldest_kept(cur, args, checkpoint["id"])) is not None:
                    for table in ("checkpoints", "writes"):
                        cur.execute(
                            f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ?",
                            (*args, oldest_kept),
                        )
            return super().put(config, checkpoint, metadata, new_versions)
        except BaseException:
            self.conn.rollback()
            raise

    def _oldest_kept(self, cur: sqlite3.Cursor, args: tuple[str, str], new_id: str) -> str | None:
        """The oldest checkpoint id of the thread to keep once `new_id` is stored; None when none is dropped."""
        keep = self.keep or 1
        if keep == 1:
            return new_id
        # Checkpoint ids grow with time, so the new one is the newest: the `keep - 1` before it stay too.
        cur.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id < ? "
            "ORDER BY checkpoint_id DESC LIMIT 1 OFFSET ?",
            (*args, new_id, keep - 2),
        )
        row = cur.fetchone()
        return None if row is None else str(row[0])


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLite's "database is locked" / "database is busy": another connection holds the lock."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class ThreadedSqliteSaver(_PrunedSqliteSaver):
    """LangGraph's SqliteSaver for asyncio: reads and writes of checkpoints on the event loop, on connections of
    their own, and everything that may wait on the persistence thread.

    AsyncSqliteSaver (aiosqlite) makes one thread hop per SQL call (five or six to load a checkpoint). Here:
    - with `reader` (autocommit) the checkpoint a run starts from is read on the loop: two indexed SELECTs of a
      WAL database, which never wait for the writer; a hop to the thread cost more CPU than the read;
    - with `writer` the checkpoint a run ends with is written on the loop (`_writer`): a hop to the thread
      and back cost more of the loop's CPU than the write (0.3-0.5 ms of a 2 ms turn). A write that finds the
      lock taken (another connection or process writing) goes to the thread and waits there; WAL checkpoints,
      which fsync, run on the thread about every `WAL_CHECKPOINT_PAGES` pages of WAL;
    - pending writes, deletes and listings run on the thread, as every write does without `writer`.
    Decoding and encoding a checkpoint hold the GIL on either thread. Same tables and format as
    AsyncSqliteSaver, so either can open the other's file.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        executor: PersistenceThread,
        *,
        keep: int | None = 1,
        reader: sqlite3.Connection | None = None,
        writer: sqlite3.Connection | None = None,
    ) -> None:
        super().__init__(conn, keep=keep)
        self._executor = executor
        self._reader = None if reader is None else _InlineReader(reader, serde=self.serde)
        # The checkpoint write on the loop: a connection that never waits for SQLite's write lock (busy timeout 0:
        # a write that finds it taken fails at once, nothing written, and is made on the thread instead) and never
        # checkpoints the WAL itself (the thread does, about every WAL_CHECKPOINT_PAGES pages), so a commit there is a
        # few writes to the WAL file: no fsync (synchronous=NORMAL) and no wait.
        self._writer = None if writer is None else _PrunedSqliteSaver(writer, serde=self.serde, keep=keep)
        self.inline_writes = 0  # checkpoints written on the loop (tests, benchmarks)
        self.wal_interval = WAL_CHECKPOINT_FIRST  # inline writes between two WAL checkpoints, set by the last one
        self.wal_pages_per_write = 0.0  # as the last WAL checkpoint measured it
        self._last_wal_checkpoint = 0
        self._next_wal_checkpoint = WAL_CHECKPOINT_FIRST
        self.thread_writes = 0  # written on the thread: no inline writer, or its lock was taken

    def setup(self) -> None:
        """Create the tables (once); the inline reader and writer share what setup found."""
        super().setup()
        for inline in (self._reader, self._writer):
            if inline is not None and not inline.is_setup:
                inline._has_task_path = self._has_task_path
                inline.is_setup = True

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Store a task's pending writes (SqliteSaver's)."""
        super().put_writes(config, writes, task_id, task_path)

    # LangGraph asks inspect.signature whether put_writes and aput_writes take task_path on every run; computed
    # once here, the bound methods' signatures are derived from it (about 0.1 ms per run less).
    put_writes.__signature__ = signature(put_writes)  # type: ignore[attr-defined]

    def _wal_checkpoint(self, writes: int) -> None:
        # On the thread: copy the WAL into the database without waiting for anyone (PASSIVE), so it stays small, and
        # set how many inline writes come before the next one from the pages these `writes` added.
        try:
            _, pages, _ = self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error:
            log.warning("checkpoint file: WAL checkpoint failed; the next one retries", exc_info=True)
        else:
            if pages > 0:  # -1 when the database is not in WAL mode
                self.wal_pages_per_write = pages / writes
                interval = round(WAL_CHECKPOINT_PAGES / self.wal_pages_per_write)
                self.wal_interval = min(max(interval, WAL_CHECKPOINT_FIRST), WAL_CHECKPOINT_MAX)
        # Read on the loop; an int's assignment is atomic, and until now the loop submits no other checkpoint.
        self._next_wal_checkpoint = self._last_wal_checkpoint + self.wal_interval

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._executor.call(fn, *args, **kwargs)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint of `config` (the thread's latest without a checkpoint id), with its pending writes."""
        if self._reader is not None and self.is_setup:
            try:
                return self._reader.get_tuple(config)
            except sqlite3.OperationalError:  # busy (another process holds a lock): wait for it on the thread
                pass
        return await self._call(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints matching the arguments, newest first."""
        found = await self._call(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint (committed when this returns): on the loop, or on the thread when the lock is taken."""
        if self._writer is not None and self.is_setup:
            try:
                stored = self._writer.put(config, checkpoint, metadata, new_versions)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
            else:
                self.inline_writes += 1
                if self.inline_writes >= self._next_wal_checkpoint:
                    writes = self.inline_writes - self._last_wal_checkpoint
                    self._last_wal_checkpoint = self.inline_writes
                    self._next_wal_checkpoint = sys.maxsize  # until the checkpoint has measured the next interval
                    self._executor.submit(self._wal_checkpoint, writes)  # not awaited: nobody waits for it
                return stored
        self.thread_writes += 1
        return await self._call(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Store a task's pending writes."""
        await self._call(self.put_writes, config, writes, task_id, task_path)

    aput_writes.__signature__ = signature(aput_writes)  # type: ignore[attr-defined]

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete a thread's checkpoints and writes."""
        await self._call(self.delete_thread, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """History of delta channels (unused by the analyst graph; kept complete for LangGraph)."""
        return await self._call(self.get_delta_channel_history, config=config, channels=channels)


class ThreadedSqliteStore(SqliteStore):
    """LangGraph's SqliteStore for asyncio: each batch runs whole on the persistence thread."""

    def __init__(self, conn: sqlite3.Connection, executor: PersistenceThread) -> None:
        super().__init__(conn)
        self._executor = executor

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations on the persistence thread."""
        batch = list(ops)
        return await self._executor.call(self.batch, batch)


def _connect(
    path: str, *, autocommit: bool, busy_ms: int | None = None, wal_autocheckpoint: bool = True
) -> sqlite3.Connection:
    kwargs: dict[str, Any] = {"isolation_level": None} if autocommit else {}
    conn = sqlite3.connect(path, check_same_thread=False, timeout=10.0, **kwargs)
    # WAL + NORMAL: a commit per checkpoint without an fsync each; a power cut may lose the last turn only.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if busy_ms is not None:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")  # how long a statement waits for a lock
    if not wal_autocheckpoint:
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # its commits never copy the WAL back (nor fsync)
    return conn


def _pruned_postgres_saver() -> type:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    class _Pruned(AsyncPostgresSaver):
        """AsyncPostgresSaver that keeps only the `keep` latest checkpoints per thread, and the blobs they use."""

        def __init__(self, conn: Any, *, keep: int | None = 1) -> None:
            super().__init__(conn)
            self.keep = keep

        def put_writes(
            self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
        ) -> None:
            """Store a task's pending writes (AsyncPostgresSaver's)."""
            super().put_writes(config, writes, task_id, task_path)

        async def aput_writes(
            self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
        ) -> None:
            """Store a task's pending writes (AsyncPostgresSaver's)."""
            await super().aput_writes(config, writes, task_id, task_path)

        # Inspected by LangGraph on every run (see ThreadedSqliteSaver): computed once.
        put_writes.__signature__ = signature(put_writes)  # type: ignore[attr-defined]
        aput_writes.__signature__ = signature(aput_writes)  # type: ignore[attr-defined]

        async def aput(
            self,
            config: RunnableConfig,
            checkpoint: Checkpoint,
            metadata: CheckpointMetadata,
            new_versions: ChannelVersions,
        ) -> RunnableConfig:
            """Store a checkpoint, then drop the thread's older ones, their writes and the blobs none uses."""
            saved = await super().aput(config, checkpoint, metadata, new_versions)
            if self.keep is not None:
                conf = saved["configurable"]
                await self._prune(conf["thread_id"], conf.get("checkpoint_ns", ""))
            return saved

        async def _prune(self, thread_id: str, ns: str) -> None:
            async with self._cursor(pipeline=False) as cur:
                await cur.execute(
                    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s "
                    "ORDER BY checkpoint_id DESC LIMIT 1 OFFSET %s",
                    (thread_id, ns, self.keep - 1 if self.keep else 0),
                )
                row = await cur.fetchone()
                if row is None:
                    return
                oldest = row["checkpoint_id"]
                for table in ("checkpoints", "checkpoint_writes"):
                    await cur.execute(
                        f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id < %s",
                        (thread_id, ns, oldest),
                    )
                # A blob is one channel's value at one version; keep those a remaining checkpoint points to.
                await cur.execute(
                    "DELETE FROM checkpoint_blobs b WHERE b.thread_id = %s AND b.checkpoint_ns = %s AND NOT EXISTS ("
                    "SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns "
                    "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)",
                    (thread_id, ns),
                )

    return _Pruned


@asynccontextmanager
async def sqlite_persistence(path: Path | str, keep: int | None = 1) -> AsyncIterator[Persistence]:
    """Checkpointer and store on one SQLite file, driven from one persistence thread; `keep` checkpoints per
    thread (None: all)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # One thread: SQLite has one writer anyway, and a single thread keeps each connection on it.
    executor = PersistenceThread("bastion-checkpoints")
    loop = asyncio.get_running_loop()
    saver_conn = store_conn = reader_conn = writer_conn = None
    try:
        saver_conn = await loop.run_in_executor(executor, partial(_connect, str(path), autocommit=False))
        store_conn = await loop.run_in_executor(executor, partial(_connect, str(path), autocommit=True))
        # The checkpoint reads run on the event loop (see ThreadedSqliteSaver), on this connection: a read that
        # finds the file locked past 50 ms (another process's exclusive lock) is retried on the thread instead.
        reader_conn = await loop.run_in_executor(executor, partial(_connect, str(path), autocommit=True, busy_ms=50))
        # The checkpoint writes run on the loop, on this connection: it never waits for the lock, nor checkpoints.
        writer_conn = await loop.run_in_executor(
            executor, partial(_connect, str(path), autocommit=False, busy_ms=0, wal_autocheckpoint=False)
        )
        saver = ThreadedSqliteSaver(saver_conn, executor, keep=keep, reader=reader_conn, writer=writer_conn)
        store = ThreadedSqliteStore(store_conn, executor)
        await loop.run_in_executor(executor, saver.setup)
        await loop.run_in_executor(executor, store.setup)
        yield Persistence(saver, store)
    finally:
        for conn in (saver_conn, store_conn, reader_conn, writer_conn):
            if conn is not None:
                await loop.run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)


@asynccontextmanager
async def postgres_persistence(url: str, pool_size: int = 5, keep: int | None = 1) -> AsyncIterator[Persistence]:
    """AsyncPostgresSaver and AsyncPostgresStore on a connection pool; `keep` checkpoints per thread (None: all)."""
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(
        psycopg_url(url), min_size=1, max_size=max(2, pool_size), kwargs=kwargs, open=False
    ) as pool:
        saver = _pruned_postgres_saver()(pool, keep=keep)
        await saver.setup()
        store = AsyncPostgresStore(pool)  # type: ignore[arg-type]
        await store.setup()
        yield Persistence(saver, store)


@asynccontextmanager
async def open_persistence(database: PersistenceSettings) -> AsyncIterator[Persistence]:
    """Persistence for `settings.database`: its own SQLite file, or the PostgreSQL database itself."""
    if database.is_sqlite:
        async with sqlite_persistence(database.checkpoint_path, keep=database.checkpoints_kept) as p:
            yield p
    else:
        url = database.url.get_secret_value()
        async with postgres_persistence(url, database.pool_size, keep=database.checkpoints_kept) as p:
            yield p
