"""Programmatic Alembic: upgrade, downgrade, current, on an async engine (usable inside a running loop)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class MigrationError(Exception):
    """A migration request cannot be carried out; the message says why."""


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest revision shipped with this code (read once: loading the scripts costs tens of ms of blocking
    work, too much for every readiness probe, and the shipped scripts do not change while the process runs)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("no migrations found")
    return head


async def _run(engine: AsyncEngine, fn_name: str, revision: str) -> None:
    cfg = alembic_config()

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        getattr(command, fn_name)(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database up to `revision` (creates the schema on an empty database)."""
    await _run(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "-1") -> None:
    """Migrate down to `revision` ("-1" = one step, "base" = empty)."""
    if revision.startswith("-") and await current(engine) is None:
        raise MigrationError("the database has no schema to downgrade")
    await _run(engine, "downgrade", revision)


async def current(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it has no schema yet."""

    def read(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)
