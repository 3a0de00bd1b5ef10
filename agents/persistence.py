"""Checkpointer and store: SQLite on their own file by default, PostgreSQL when the database is PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from sqlalchemy.engine import make_url


@dataclass
class Persistence:
    """The graph's checkpointer (conversation state) and store (per-user preferences)."""

    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore


def psycopg_url(sqlalchemy_url: str) -> str:
    """A libpq URL (what psycopg wants) from a SQLAlchemy postgresql+asyncpg URL."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def sqlite_persistence(path: Path | str) -> AsyncIterator[Persistence]:
    """AsyncSqliteSaver and AsyncSqliteStore on one SQLite file."""
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(str(path)) as conn:
        # WAL + NORMAL: a commit per checkpoint without an fsync each; a power cut may lose the last turn only.
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        async with AsyncSqliteStore.from_conn_string(str(path)) as store:
            await store.setup()
            yield Persistence(saver, store)


@asynccontextmanager
async def postgres_persistence(url: str, pool_size: int = 5) -> AsyncIterator[Persistence]:
    """AsyncPostgresSaver and AsyncPostgresStore on a connection pool."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    async with AsyncConnectionPool(
        psycopg_url(url), min_size=1, max_size=max(2, pool_size), kwargs=kwargs, open=False
    ) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await saver.setup()
        store = AsyncPostgresStore(pool)  # type: ignore[arg-type]
        await store.setup()
        yield Persistence(saver, store)


@asynccontextmanager
async def open_persistence(database: Any) -> AsyncIterator[Persistence]:
    """Persistence for `settings.database`: its own SQLite file, or the PostgreSQL database itself."""
    if database.is_sqlite:
        async with sqlite_persistence(database.checkpoint_path) as p:
            yield p
    else:
        async with postgres_persistence(database.url.get_secret_value(), database.pool_size) as p:
            yield p
