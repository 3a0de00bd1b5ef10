"""Per-user token buckets in PostgreSQL, so every worker on the database draws from one budget per user.

A check is one statement on an autocommit connection — one round trip, no transaction around it: the upsert
refills the stored bucket from the time elapsed on the database's clock (never a worker's), takes a token when
there is one and counts the refusals since the last allowed message, all under the row lock ON CONFLICT takes.
Two workers checking one user at once are serialised by that lock, so the budget is never overdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import Float

from storage.models import RateBucket
from storage.repositories._dml import rowcount, table_of
from storage.types import UTCDateTime

KEY_LENGTH = 160  # the column's width; longer keys are stored by their digest
# $1 key, $2 burst, $3 tokens per second, $4 the time of the check (NULL: the database's clock). A new key
# starts full and takes its token; a stored one is refilled for the time since its last check, capped at the
# burst, and gives a token when it has one (1e-9: float slack, a token due exactly now is there).
TAKE_SQL = """
INSERT INTO rate_buckets AS b (bucket_key, tokens, updated_at, refusals)
VALUES ($1, $2::float8 - 1, coalesce($4::timestamptz, statement_timestamp()), 0)
ON CONFLICT (bucket_key) DO UPDATE SET (tokens, refusals, updated_at) = (
    SELECT CASE WHEN r.refilled >= 1 - 1e-9 THEN greatest(r.refilled - 1, 0) ELSE r.refilled END,
           CASE WHEN r.refilled >= 1 - 1e-9 THEN 0 ELSE b.refusals + 1 END,
           greatest(b.updated_at, excluded.updated_at)
    FROM (
        SELECT least(
            $2::float8,
            b.tokens + greatest(extract(epoch FROM excluded.updated_at - b.updated_at)::float8, 0) * $3::float8
        ) AS refilled
    ) AS r
)
RETURNING tokens, refusals
"""


@dataclass(frozen=True)
class BucketState:
    """A bucket right after a check: tokens left, and refused messages since the last allowed one (0: allowed)."""

    tokens: float
    refusals: int


def stored_key(key: str) -> str:
    """The key as stored: itself when it fits the column, else a digest of it."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class BucketStore:
    """The buckets of one database, over one connection of its own (autocommit; checks take turns on it).

    One round trip of a fraction of a millisecond per check, so one connection carries thousands of checks a
    second. The connection opens at the first check; any failure drops it, and the next check opens a new one.
    The check runs on the driver (asyncpg) directly, with its prepared-statement cache: the same statement
    through SQLAlchemy costs 1.2-1.4 times the CPU (tests/bench/bench_ratelimit.py prints both).
    """

    def __init__(self, url: str | URL, *, timeout_s: float = 2.0) -> None:
        # Autocommit: no BEGIN and COMMIT round trips around the one statement. The timeouts bound a check on
        # an unreachable or stalled server (the caller then decides without the database).
        self.engine = create_async_engine(
            make_url(url),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": timeout_s, "command_timeout": timeout_s},
        )
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    async def take(self, key: str, *, burst: int, per_second: float, now: datetime | None = None) -> BucketState:
        """Take a token from `key`'s bucket if it has one; `now` defaults to the database's clock."""
        async with self._lock:
            conn = await self._connection()
            try:
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None  # an open connection has its asyncpg connection
                row = await driver.fetchrow(TAKE_SQL, stored_key(key), float(burst), per_second, now)
            except BaseException:
                await self._drop()
                raise
        return BucketState(tokens=float(row[0]), refusals=int(row[1]))

    async def prune(self, *, idle_s: float, now: datetime | None = None) -> int:
        """Delete buckets untouched for `idle_s`: full again by then, they behave exactly like new ones."""
        table = table_of(RateBucket)
        at = func.statement_timestamp() if now is None else bindparam("now", now, type_=UTCDateTime)
        cutoff = at - func.make_interval(0, 0, 0, 0, 0, 0, bindparam("idle_s", idle_s, type_=Float))
        async with self._lock:
            conn = await self._connection()
            try:
                result = await conn.execute(delete(table).where(table.c.updated_at < cutoff))
            except BaseException:
                await self._drop()
                raise
        return rowcount(result)

    async def close(self) -> None:
        """Close the connection and the engine."""
        async with self._lock:
            await self._drop(broken=False)
        await self.engine.dispose()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self.engine.connect()
        return self._conn

    async def _drop(self, *, broken: bool = True) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # a broken connection may fail to close; it is gone either way
            await (conn.invalidate() if broken else conn.close())
