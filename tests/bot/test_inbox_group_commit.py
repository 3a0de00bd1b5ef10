"""Group commits in the webhook inbox: concurrent stores are one INSERT and concurrent marks one UPDATE, each caller
still returns only after its own row committed; a failed batch fails all of its callers and stores nothing; a
dropped PostgreSQL connection costs at most one failed request (Telegram retries it) and never a second handling."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.api.inbox import WebhookInbox
from storage.models import InboxUpdate
from storage.repositories import inbox as inbox_repo
from tests import sql_trace
from tests.conftest import _admin


class Recording:
    """Counts the updates handled; optionally waits on `release` before each (to finish a batch together)."""

    def __init__(self, release: asyncio.Event | None = None) -> None:
        self.handled: Counter[int] = Counter()
        self.release = release

    async def process(self, data: dict[str, Any]) -> None:
        if self.release is not None:
            await self.release.wait()
        self.handled[data["update_id"]] += 1

    def duplicate(self, update_id: int) -> None:
        pass


class Querying(Recording):
    """Reads the database while handling (as a turn does), so concurrent slots hold pooled connections at once."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__()
        self.sessions = sessions
        self.drop_after: int | None = None  # drop every connection once this update was handled

    async def process(self, data: dict[str, Any]) -> None:
        async with self.sessions() as s:
            await s.execute(text("SELECT pg_sleep(0.02)"))
        await super().process(data)
        if data["update_id"] == self.drop_after:
            await _drop_connections(self.sessions)


async def _drop_connections(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Terminate every server process of the test's database (a PostgreSQL restart, as the pool sees it)."""
    bind = sessions.kw["bind"]
    await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{bind.url.database}'")


def _commits(engine: AsyncEngine) -> list[int]:
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda conn: commits.append(1))
    return commits


def _autocommit_stores(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether the inbox writes on the driver outside a transaction (PostgreSQL) rather than in a session's."""
    return bool(sessions.kw["bind"].dialect.name == "postgresql")


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[int, InboxUpdate]:
    async with sessions() as s:
        return {r.update_id: r for r in await s.scalars(select(InboxUpdate))}


async def test_concurrent_stores_are_one_transaction_and_each_returns_after_its_row_committed(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    commits = _commits(engine)
    inbox = WebhookInbox(sessions, Recording(), worker_id="a")  # not ready: only the stores run
    seen_committed: list[bool] = []

    async def post(n: int) -> str:
        verdict = await inbox.feed({"update_id": n})
        async with sessions() as s:  # another connection sees the row the moment feed returns
            seen_committed.append(await s.scalar(select(InboxUpdate.id).where(InboxUpdate.update_id == n)) is not None)  # type: ignore[arg-type]
        return verdict

    verdicts = await asyncio.gather(*(post(n) for n in range(40)), post(3))  # 3 twice: Telegram's retry
    assert sorted(verdicts).count("stored") == 40 and verdicts.count("duplicate") == 1
    assert all(seen_committed)
    assert len(commits) <= 3, f"{len(commits)} transactions for 41 stores"
    assert inbox._stores.batches <= 3, f"{inbox._stores.batches} INSERTs for 41 stores"
    assert set(await _rows(sessions)) == set(range(40))


async def test_concurrent_marks_are_one_transaction_and_every_update_is_marked_done(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    release = asyncio.Event()
    processor = Recording(release)
    inbox = WebhookInbox(sessions, processor, worker_id="a", concurrency=8)
    inbox.ready.set()
    await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(8)))
    await asyncio.sleep(0.05)  # all eight in their slots, waiting
    commits = _commits(engine)
    release.set()
    await inbox.drain()
    assert processor.handled == {n: 1 for n in range(8)}
    assert len(commits) <= 2, f"{len(commits)} transactions for 8 marks"
    assert inbox._marks.batches <= 2, f"{inbox._marks.batches} UPDATEs for 8 marks"
    assert {r.status for r in (await _rows(sessions)).values()} == {"done"}


async def test_a_failed_store_batch_fails_each_request_and_the_retries_are_handled_once(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = Recording()
    inbox = WebhookInbox(sessions, processor, worker_id="a", lease_s=0.3)
    inbox.ready.set()
    real = inbox_repo.store_many
    crashes = iter([True])

    async def crash_after_insert(session: AsyncSession, *args: Any, **kw: Any) -> dict[int, int]:
        stored = await real(session, *args, **kw)
        if next(crashes, False):  # the batch's INSERT ran; the answer never reaches the request
            raise ConnectionResetError("database went away at commit")
        return stored

    monkeypatch.setattr(inbox_repo, "store_many", crash_after_insert)
    outcomes = await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(10)), return_exceptions=True)
    assert all(isinstance(o, ConnectionResetError) for o in outcomes)  # each request answers 500
    assert processor.handled == Counter()
    if not _autocommit_stores(sessions):
        # A session's transaction: the crash came before its COMMIT, nothing was stored.
        assert await _rows(sessions) == {}
        # Telegram retries every update that got no 200.
        assert await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(10))) == ["stored"] * 10
    else:
        # PostgreSQL: the INSERT is its own transaction, committed before it answered. The rows stay pending under
        # this worker's lease: Telegram's retries are repeats, and recovery hands each out once after the lease.
        rows = await _rows(sessions)
        assert set(rows) == set(range(10)) and {r.status for r in rows.values()} == {"pending"}
        assert await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(10))) == ["duplicate"] * 10
        assert processor.handled == Counter()
        await asyncio.sleep(0.35)
        assert await inbox.recover() == 10
    await inbox.drain()
    assert processor.handled == {n: 1 for n in range(10)}
    assert {r.status for r in (await _rows(sessions)).values()} == {"done"}


async def test_a_store_batch_whose_statement_fails_stores_nothing_and_the_retries_are_handled_once(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = Recording()
    inbox = WebhookInbox(sessions, processor, worker_id="a")
    inbox.ready.set()
    real = inbox_repo.store_many
    crashes = iter([True])

    async def crash_before_insert(session: AsyncSession, *args: Any, **kw: Any) -> dict[int, int]:
        if next(crashes, False):  # the connection dropped before the INSERT reached the database
            raise ConnectionResetError("database went away")
        return await real(session, *args, **kw)

    monkeypatch.setattr(inbox_repo, "store_many", crash_before_insert)
    outcomes = await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(10)), return_exceptions=True)
    assert all(isinstance(o, ConnectionResetError) for o in outcomes)
    assert await _rows(sessions) == {}
    assert await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(10))) == ["stored"] * 10
    await inbox.drain()
    assert processor.handled == {n: 1 for n in range(10)}


async def test_a_failed_mark_batch_leaves_its_updates_for_recovery_and_each_slot_waits_for_its_mark(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = asyncio.Event()
    processor = Recording(release)
    inbox = WebhookInbox(sessions, processor, worker_id="a", concurrency=4, lease_s=0.3)
    inbox.ready.set()
    real = inbox_repo.mark_done_many
    marks: list[list[int]] = []

    async def failing_mark(session: AsyncSession, batch: Any, now: Any = None) -> None:
        marks.append([row_id for row_id, _ in batch])
        if len(marks) == 1:
            raise ConnectionResetError("database went away")
        await real(session, batch, now)

    monkeypatch.setattr(inbox_repo, "mark_done_many", failing_mark)
    await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(6)))  # 4 in slots, 2 waiting
    await asyncio.sleep(0.05)
    release.set()
    await inbox.drain()
    assert len(marks[0]) == 4  # the four slots' marks in one batch, which failed
    rows = await _rows(sessions)
    pending = sorted(n for n, r in rows.items() if r.status == "pending")
    assert len(pending) == 4 and all(rows[n].status == "done" for n in set(range(6)) - set(pending))
    await asyncio.sleep(0.35)  # their lease runs out: recovery hands them out again (at-least-once)
    assert await inbox.recover() == 4
    await inbox.drain()
    assert {r.status for r in (await _rows(sessions)).values()} == {"done"}
    assert sum(c - 1 for c in processor.handled.values()) == 4  # repeats bounded by the slots


@pytest.mark.postgres
async def test_killed_postgresql_backends_cost_at_most_one_failed_request_and_no_second_handling(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("a SQLite file has no server connection to drop")
    processor = Querying(sessions)
    inbox = WebhookInbox(sessions, processor, worker_id="a", concurrency=4)
    inbox.ready.set()
    await asyncio.gather(*(inbox.feed({"update_id": n}) for n in range(12)))  # the pool holds several connections
    await inbox.drain()
    assert engine.pool.checkedin() >= 2  # type: ignore[attr-defined]
    await _drop_connections(sessions)
    failures = 0
    for n in range(100, 106):  # one update at a time, each retried by Telegram until it gets its 200
        while True:
            try:
                assert await inbox.feed({"update_id": n}) == "stored"
                break
            except Exception:
                failures += 1
                assert failures <= 1, "more than one request failed after the drop"
        await inbox.drain()
    assert processor.handled == {n: 1 for n in [*range(12), *range(100, 106)]}
    # The drop meets a mark: the batch is written again on a fresh connection, the update is not handled again.
    processor.drop_after = 200
    caplog.set_level(logging.WARNING, "storage.group_commit")
    assert await inbox.feed({"update_id": 200}) == "stored"
    await inbox.drain()
    assert any("writing the batch of 1 again" in r.getMessage() for r in caplog.records)
    assert (await _rows(sessions))[200].status == "done"
    assert processor.handled[200] == 1


@pytest.mark.postgres
async def test_on_postgresql_stores_and_marks_are_single_statements_outside_any_transaction(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writes in a session's transaction")
    processor = Recording()
    inbox = WebhookInbox(sessions, processor, worker_id="a", lease_s=60)
    inbox.ready.set()
    payloads = [{"update_id": n, "message": {"text": f"/price {n}", "nested": [1, None, "é"]}} for n in range(20)]
    with sql_trace.transactions_begun(engine) as begins:
        assert await asyncio.gather(*(inbox.feed(p) for p in payloads), inbox.feed(payloads[0])) == [
            *["stored"] * 20,
            "duplicate",
        ]
        await inbox.drain()
    assert begins == []  # no BEGIN ... COMMIT around the INSERTs and UPDATEs: each committed by itself
    assert processor.handled == {n: 1 for n in range(20)}
    rows = await _rows(sessions)
    assert {n: r.payload for n, r in rows.items()} == {p["update_id"]: p for p in payloads}
    for row in rows.values():
        assert (row.status, row.claimed_by, row.lease_until, row.reply) == ("done", "a", None, None)
        assert row.processed_at is not None and row.processed_at >= row.received_at
    assert len({r.id for r in rows.values()}) == 20
