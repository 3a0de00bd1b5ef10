"""Typed access to two things the SQLModel and SQLAlchemy stubs leave out: a table class's Core table and the
row count of an INSERT/UPDATE/DELETE run through an AsyncSession."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result, Table
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """The Core `Table` behind a SQLModel table class (for dialect inserts such as ON CONFLICT DO NOTHING)."""
    # SQLModel's metaclass sets `__table__` through SQLAlchemy's declarative mapping, but does not declare it.
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


def rowcount(result: Result[Any]) -> int:
    """How many rows a DML statement matched."""
    # AsyncSession.execute is typed to return a plain Result for every statement; for DML it is a CursorResult.
    return cast("CursorResult[Any]", result).rowcount
