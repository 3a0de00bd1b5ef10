"""What SQL a block of a test runs: its statements and the transactions SQLAlchemy begins.

Statements are seen both through the engine and straight on a PostgreSQL driver connection
(storage.repositories._driver), where SQLAlchemy sees nothing: asyncpg's `Connection.fetch` and `execute` are
watched too (SQLAlchemy's own statements go through prepared statements instead, so none is counted twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The first word (upper case) of each SQL statement run inside the block, in order."""
    seen: list[str] = []

    def note(sql: str) -> None:
        seen.append(sql.split(None, 1)[0].upper())

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        note(sql)

    direct = {name: getattr(asyncpg.Connection, name) for name in ("fetch", "execute")}

    def watched(name: str) -> Any:
        real = direct[name]

        async def call(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
            note(query)
            return await real(self, query, *args, **kw)

        return call

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    for name in direct:
        setattr(asyncpg.Connection, name, watched(name))
    try:
        yield seen
    finally:
        for name, real in direct.items():
            setattr(asyncpg.Connection, name, real)
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@contextmanager
def transactions_begun(engine: AsyncEngine) -> Iterator[list[int]]:
    """One entry per transaction SQLAlchemy begins inside the block (none for a driver statement of its own)."""
    begun: list[int] = []

    def began(_conn: Any) -> None:
        begun.append(1)

    event.listen(engine.sync_engine, "begin", began)
    try:
        yield begun
    finally:
        event.remove(engine.sync_engine, "begin", began)
