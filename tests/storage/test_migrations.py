"""Migrations create, drop and re-create the schema on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage import migrate
from storage.db import create_engine
from storage.schema import metadata

APP_TABLES = {
    "users",
    "chats",
    "chat_bindings",
    "exchange_accounts",
    "approvals",
    "audit_log",
    "alert_subscriptions",
    "outbox",
    "reports",
    "risk_decisions",
    "engine_flags",
    "executions",
    "position_plans",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _diff(conn: Connection) -> list[object]:
    return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


async def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await migrate.current(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            tables = await conn.run_sync(_tables)
        assert tables >= APP_TABLES
        assert tables == set(metadata.tables), "every model table is created by a migration"

        await migrate.downgrade(engine, "base")
        assert await migrate.current(engine) is None
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()

        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # idempotent
        assert await migrate.current(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_migrations_match_models(db_url: str) -> None:
    """A model change without a migration fails here (autogenerate finds no difference at head)."""
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_downgrade_of_empty_database_is_refused(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        try:
            await migrate.downgrade(engine)
        except migrate.MigrationError as exc:
            assert "no schema" in str(exc)
        else:  # pragma: no cover - the assertion is the point
            raise AssertionError("downgrade of an empty database must be refused")
    finally:
        await engine.dispose()


async def test_sqlite_pragmas(sqlite_url: str) -> None:
    from sqlalchemy import text

    engine = create_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()
