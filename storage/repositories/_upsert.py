"""Dialect-aware INSERT ... ON CONFLICT DO NOTHING, for race-free get-or-create and dedup."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.repositories._dml import rowcount

MANY_CHUNK = 1000  # rows per statement: x columns stays under PostgreSQL's 65,535 and SQLite's 32,766 parameters


async def insert_ignore(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """Insert `values` unless a unique constraint already holds them; True when a row was inserted."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values).on_conflict_do_nothing()
    result = await session.execute(stmt)
    return bool(rowcount(result))


async def insert_ignore_many(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert `rows` in one statement, skipping those a unique constraint already holds; returns how many went in."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    done = 0
    for start in range(0, len(rows), MANY_CHUNK):  # bound parameters per statement stay under both limits
        result = await session.execute(insert(table).values(rows[start : start + MANY_CHUNK]).on_conflict_do_nothing())
        done += rowcount(result)
    return done
