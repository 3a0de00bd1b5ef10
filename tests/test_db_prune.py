"""`bastion db prune`: delivered outbox rows, handled webhook updates and signal nonces past the retention go;
pending and recent rows stay."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from typer.testing import CliRunner

from bastion.cli import app
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import InboxUpdate, Outbox, SignalNonce
from storage.repositories import inbox as inbox_repo
from storage.repositories import outbox as outbox_repo
from storage.repositories import signal_nonces
from storage.types import utcnow


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for name in list(os.environ):
        if name.startswith("BASTION_") and name != "BASTION_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'prune.db'}"
    monkeypatch.setenv("BASTION_DATABASE__URL", url)
    monkeypatch.setenv("BASTION_SECRET_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("BASTION_DATABASE__RETENTION_DAYS", "10")
    return url


async def _seed(url: str) -> None:
    engine = create_engine(url)
    await migrate.upgrade(engine)
    old, new = utcnow() - timedelta(days=11), utcnow() - timedelta(days=9)
    async with session_factory(engine).begin() as s:
        for n, (when, status) in enumerate([(old, "sent"), (old, "failed"), (old, "pending"), (new, "sent")]):
            await outbox_repo.enqueue(s, platform="telegram", recipient="1", payload={"n": n}, now=when)
            row = (await s.scalars(select(Outbox).order_by(Outbox.id.desc()))).first()  # type: ignore[union-attr]
            assert row is not None
            row.status = status
        for update_id, when in ((1, old), (2, new)):
            stored = await inbox_repo.store(
                s,
                platform="telegram",
                update_id=update_id,
                payload={"update_id": update_id},
                worker="w",
                lease=timedelta(seconds=60),
                now=when,
            )
            assert stored is not None
            await inbox_repo.mark_done(s, stored, now=when)
        await signal_nonces.claim(s, "old-signature", old, now=old)
        await signal_nonces.claim(s, "new-signature", new, now=new)
    await engine.dispose()


async def _count(url: str, table: type) -> int:
    engine = create_engine(url)
    async with session_factory(engine)() as s:
        n = int((await s.execute(select(func.count()).select_from(table))).scalar_one())
    await engine.dispose()
    return n


def test_prune_deletes_only_what_is_done_and_older_than_the_retention(db: str) -> None:
    asyncio.run(_seed(db))
    result = CliRunner().invoke(app, ["db", "prune"])
    assert result.exit_code == 0, result.output
    assert "pruned rows older than 10 days" in result.output
    assert "outbox messages (sent or failed): 2" in result.output
    assert "webhook updates (handled): 1" in result.output
    assert "signal nonces: 1" in result.output
    assert asyncio.run(_count(db, Outbox)) == 2  # the old pending one and the recent sent one
    assert asyncio.run(_count(db, InboxUpdate)) == 1
    assert asyncio.run(_count(db, SignalNonce)) == 1
    again = CliRunner().invoke(app, ["db", "prune", "--older-than-days", "5"])
    assert "outbox messages (sent or failed): 1" in again.output  # the 9-day-old sent one now
    assert asyncio.run(_count(db, Outbox)) == 1
