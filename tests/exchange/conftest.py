"""Fixtures of the exchange tests: a temporary SQLite database migrated to head (paper tables included)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import migrate
from storage.db import create_engine


async def make_paper_engine(path: Path) -> AsyncEngine:
    """A SQLite engine on `path` with the schema created by the migrations."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate.upgrade(engine)
    return engine


@pytest.fixture
async def paper_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database for the paper account."""
    engine = await make_paper_engine(tmp_path / "paper.db")
    yield engine
    await engine.dispose()
