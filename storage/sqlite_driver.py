"""aiosqlite with one round trip to the connection's thread per statement.

SQLAlchemy's aiosqlite adapter runs each statement as four calls on aiosqlite's thread: make a cursor, execute,
fetch the rows, close the cursor. Each call is a hand-off to the thread and a wake-up of the event loop, and
together they were most of a short statement's CPU (about 0.8 ms of 1). `OneTripConnection` is aiosqlite's
connection whose cursors do all four in one call: the rows, description, rowcount and lastrowid come back together
and are served from memory afterwards. Nothing else changes: the same sqlite3 connection on the same single
thread, the same transactions (commit and rollback are aiosqlite's own), the same errors.

`connect` is a `do_connect` listener: the dialect's own connect arguments (the file, its timeout) open it.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[list[Any], Any, int, int | None]  # rows, description, rowcount, lastrowid


class OneTripCursor:
    """The part of aiosqlite's cursor SQLAlchemy uses; `execute` brings every row back in the same trip."""

    __slots__ = ("_conn", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, conn: OneTripConnection) -> None:
        self._conn = conn
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._rows.clear()

    def _run(self, many: bool, sql: str, parameters: Any) -> _Outcome:
        # On the connection's thread: a fresh sqlite3 cursor, run to completion and closed.
        cursor = self._conn._conn.cursor()
        try:
            (cursor.executemany if many else cursor.execute)(sql, parameters)
            rows = cursor.fetchall() if cursor.description else []
            return rows, cursor.description, cursor.rowcount, cursor.lastrowid
        finally:
            cursor.close()

    async def _trip(self, many: bool, sql: str, parameters: Any) -> OneTripCursor:
        self._rows.clear()
        rows, self.description, self.rowcount, self.lastrowid = await self._conn._execute(
            self._run, many, sql, parameters
        )
        self._rows.extend(rows)
        return self

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> OneTripCursor:
        return await self._trip(False, sql, () if parameters is None else parameters)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> OneTripCursor:
        return await self._trip(True, sql, parameters)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        n = min(self.arraysize if size is None else size, len(self._rows))
        return [self._rows.popleft() for _ in range(n)]

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()


class OneTripConnection(aiosqlite.Connection):
    """aiosqlite's connection, its cursors `OneTripCursor`s (made on the loop, nothing sent to the thread)."""

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)


def connect(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> AsyncAdapt_aiosqlite_connection:
    """`do_connect` listener for an aiosqlite engine: its connection, opened as the dialect would open it."""
    conn = OneTripConnection(partial(sqlite3.connect, *cargs, **cparams), iter_chunk_size=64)
    conn._thread.daemon = True  # as SQLAlchemy's own connect does: an undisposed engine must not hang the exit
    opened: Any = await_(conn)  # SQLAlchemy's protocol for the driver is looser than aiosqlite's own types
    return AsyncAdapt_aiosqlite_connection(dialect.dbapi, opened)
