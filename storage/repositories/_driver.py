"""One statement straight on a pooled PostgreSQL connection's driver (asyncpg), outside any transaction.

A write that is one statement is atomic on its own: PostgreSQL commits it before it answers. Through a session it
costs three round trips (BEGIN, the statement, COMMIT) and SQLAlchemy's per-statement work (compile-cache lookup,
parameter and result processing, session and transaction bookkeeping); here it is one round trip, prepared once
per connection by asyncpg's statement cache. The webhook inbox's stores and marks and the outbox's marks go this
way (a batch of two cost a quarter to a third of the CPU of the session path, side by side; a mark a fifth);
SQLite keeps the session path.

A dropped connection is handled as SQLAlchemy handles one met by a statement of its own: this connection and every
pooled one opened before the drop are replaced, and the error is a `DBAPIError` with `connection_invalidated` set
(what `storage.group_commit` retries on).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


def has_driver(engine: AsyncEngine) -> bool:
    """Whether `engine`'s statements may go to its driver directly (PostgreSQL through asyncpg)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"


def driver_engine(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine | None:
    """The engine behind `sessions` when its statements may go to the driver directly, else None (SQLite)."""
    bind = sessions.kw.get("bind")
    return bind if isinstance(bind, AsyncEngine) and has_driver(bind) else None


def single_statement(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine | None
) -> contextlib.AbstractAsyncContextManager[Any]:
    """Where a write of one statement runs: with `engine` (from `driver_engine`) its driver outside any
    transaction, the statement committing by itself (one round trip instead of three), else a session in a write
    transaction."""
    return sessions.begin() if engine is None else autocommit_driver(engine)


@contextlib.asynccontextmanager
async def autocommit_driver(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled connection's asyncpg connection for the block, with no transaction open: each statement commits
    when it answers. The connection goes back to the pool afterwards (nothing to roll back)."""
    async with engine.connect() as conn:
        pooled = await conn.get_raw_connection()
        driver = pooled.driver_connection
        assert driver is not None  # a checked-out connection has its driver's
        try:
            yield driver
        except Exception as exc:
            if not driver.is_closed():  # SQLAlchemy's test of a disconnect on asyncpg
                raise
            await conn.run_sync(_invalidate, exc)
            raise DBAPIError(None, None, exc, connection_invalidated=True) from exc
        except BaseException:
            # Cancelled mid-statement: the connection may still be answering it; it must not serve anyone else.
            pooled.invalidate()
            raise


def _invalidate(conn: Connection, exc: BaseException) -> None:
    # What Connection._handle_dbapi_exception does on a disconnect: the pool stamps the time of the drop (every
    # connection checked out before it is replaced at its next checkout), then this connection is closed.
    pooled = conn.connection
    conn.engine.pool._invalidate(pooled, exc)  # no public call does this
    conn.invalidate(exc)
