"""Per-user token buckets in PostgreSQL, so every worker on the database draws from one budget per user.

A check is one statement on an autocommit connection — one round trip, no transaction around it: the upsert
refills the stored bucket from the time elapsed on the database's clock (never a worker's), takes a token when
there is one and counts the refusals since the last allowed message, all under the row lock ON CONFLICT takes.
Two workers checking one user at once are serialised by that lock, so the budget is never overdrawn.

Checks that arrive while one is at the database go together in the next statement (a group commit,
storage/group_commit.py): one round trip for a batch of users, their rows locked in key order, so two workers'
batches never deadlock. Two checks of one user in a batch are two statements, one after the other: each takes
its own token, as if they had come one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import Float

from storage.group_commit import GroupCommit
from storage.models import RateBucket
from storage.repositories._dml import rowcount, table_of
from storage.types import UTCDateTime

KEY_LENGTH = 160  # the column's width; longer keys are stored by their digest
# $2 burst, $3 tokens per second, $4 the time of the check (NULL: the database's clock). A new key starts full
# and takes its token; a stored one is refilled for the time since its last check, capped at the burst, and gives
# a token when it has one (1e-9: float slack, a token due exactly now is there).
_TAKE = """
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
RETURNING bucket_key, tokens, refusals
"""
_INSERT = "INSERT INTO rate_buckets AS b (bucket_key, tokens, updated_at, refusals)"
_NEW = "$2::float8 - 1, coalesce($4::timestamptz, statement_timestamp()), 0"
TAKE_SQL = f"{_INSERT}\nVALUES ($1, {_NEW}){_TAKE}"  # $1 one key
# $1 distinct keys: their rows are inserted, and so locked, in key order (two workers' batches never deadlock).
TAKE_MANY_SQL = f"{_INSERT}\nSELECT k, {_NEW}\nFROM unnest($1::text[]) AS k ORDER BY k{_TAKE}"
MAX_BATCH = 500  # checks per statement


_Params = tuple[float, float, datetime | None]  # a check's burst, tokens per second and time


@dataclass(frozen=True)
class _Check:
    key: str  # as stored
    burst: float
    per_second: float
    now: datetime | None


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
        self._checks: GroupCommit[_Check, BucketState] = GroupCommit(self._take_batch, max_batch=MAX_BATCH)
        self.statements = 0  # check statements sent (tests and benchmarks)

    async def take(self, key: str, *, burst: int, per_second: float, now: datetime | None = None) -> BucketState:
        """Take a token from `key`'s bucket if it has one; `now` defaults to the database's clock."""
        return await self._checks.submit(_Check(stored_key(key), float(burst), per_second, now))

    async def _take_batch(self, checks: Sequence[_Check]) -> list[BucketState]:
        """One statement per group of checks with the same parameters and distinct keys; results in order.

        Each statement commits by itself: when a later one fails, the tokens the earlier ones took stay taken
        (the callers all fall back to their worker's own buckets; a limit a little stricter for one batch)."""
        rounds: list[dict[_Params, list[str]]] = []
        seen: Counter[_Check] = Counter()
        place: list[tuple[int, _Params]] = []
        for check in checks:  # the n-th check of a key goes in the n-th round
            params, n = (check.burst, check.per_second, check.now), seen[check]
            seen[check] += 1
            if n == len(rounds):
                rounds.append({})
            rounds[n].setdefault(params, []).append(check.key)
            place.append((n, params))
        answers: list[dict[_Params, dict[str, BucketState]]] = []
        async with self._lock:
            try:
                driver = await self._driver()
                for groups in rounds:
                    answered = {}
                    for (burst, per_second, now), keys in groups.items():
                        self.statements += 1
                        if len(keys) == 1:  # a quiet moment: the lighter statement
                            rows = [await driver.fetchrow(TAKE_SQL, keys[0], burst, per_second, now)]
                        else:
                            rows = await driver.fetch(TAKE_MANY_SQL, keys, burst, per_second, now)
                        answered[(burst, per_second, now)] = {
                            row[0]: BucketState(tokens=float(row[1]), refusals=int(row[2])) for row in rows
                        }
                    answers.append(answered)
            except BaseException:
                await self._drop()
                raise
        return [answers[n][params][check.key] for (n, params), check in zip(place, checks, strict=True)]

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

    async def _driver(self) -> Any:
        """The asyncpg connection under the store's connection (opened if need be)."""
        driver = (await (await self._connection()).get_raw_connection()).driver_connection
        assert driver is not None  # an open connection has its asyncpg connection
        return driver

    async def _drop(self, *, broken: bool = True) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # a broken connection may fail to close; it is gone either way
            await (conn.invalidate() if broken else conn.close())
