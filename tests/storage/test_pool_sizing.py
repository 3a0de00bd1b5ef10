"""The PostgreSQL pool is sized from the process's concurrency and pings nothing per checkout."""

from __future__ import annotations

import pytest

from bastion.settings import POOL_MARGIN, Settings
from storage.db import create_engine


def test_the_pool_holds_a_connection_per_slot_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_API__INBOX_CONCURRENCY", "12")
    monkeypatch.setenv("BASTION_BOT__OUTBOX_CONCURRENCY", "6")
    assert Settings().database.pool_size == 12 + 6 + POOL_MARGIN
    monkeypatch.setenv("BASTION_DATABASE__POOL_SIZE", "7")
    assert Settings().database.pool_size == 7  # the operator's figure wins


async def test_a_server_pool_pings_nothing_per_checkout() -> None:
    engine = create_engine("postgresql+asyncpg://u:p@127.0.0.1:1/db", pool_size=20)  # never connects
    pool = engine.sync_engine.pool
    assert pool._pre_ping is False  # type: ignore[attr-defined]  # a BEGIN; ROLLBACK round trip per checkout
    assert pool.size() == 20  # type: ignore[attr-defined]
    await engine.dispose()
