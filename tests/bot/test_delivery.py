"""Outbox delivery: rate limits, order per chat, 429 storms, blocked recipients, no losses."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.core.delivery import DELIVERY_RETRY, DeliveryWorker, RecipientGone, RetryAfter
from bot.core.ratelimit import PlatformLimits
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import Outbox, User
from storage.repositories import outbox
from storage.repositories._driver import autocommit_driver
from storage.repositories.users import get_or_create_user
from storage.retry import RetryPolicy
from tests import sql_trace
from tests.bot.fakes import RecordingSender, VirtualClock
from tests.fakes import virtual_time


async def _queue(
    sessions: async_sessionmaker[AsyncSession],
    clock: VirtualClock,
    chats: list[str],
    per_chat: int,
    user_id: int | None = None,
) -> None:
    async with sessions.begin() as s:
        for n in range(per_chat):
            for chat in chats:
                await outbox.enqueue(
                    s, platform="telegram", recipient=chat, payload={"n": n}, user_id=user_id, now=clock.wall()
                )


def _worker(sessions: async_sessionmaker[AsyncSession], clock: VirtualClock, sender: RecordingSender) -> DeliveryWorker:
    return DeliveryWorker(sessions, {"telegram": sender}, clock=clock, sleep=clock.sleep, wall=clock.wall)


def _check_limits(
    sent: list[tuple[float, str, dict]], per_second: int = 30, chat_gap: float = 1.0, group_gap: float = 3.0
) -> None:
    times = sorted(t for t, _, _ in sent)
    for i in range(len(times) - per_second):
        assert times[i + per_second] - times[i] >= 1.0 - 1e-9, "more than 30 messages in one second"
    by_chat: dict[str, list[float]] = defaultdict(list)
    for t, chat, _ in sent:
        by_chat[chat].append(t)
    for chat, ts in by_chat.items():
        gap = group_gap if chat.startswith("-") else chat_gap
        assert all(b - a >= gap - 1e-9 for a, b in itertools.pairwise(ts)), f"chat {chat} too fast"


async def test_everything_delivered_in_order_within_limits(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = VirtualClock()
    sender = RecordingSender(clock)
    chats = [str(1000 + i) for i in range(40)] + ["-100500", "-100501"]
    await _queue(sessions, clock, chats, per_chat=5)
    stats = await _worker(sessions, clock, sender).drain(wait_for_retries=True)
    assert stats.sent == len(chats) * 5 and stats.failed == 0
    _check_limits(sender.sent)
    for chat in chats:
        assert [p["n"] for _, c, p in sender.sent if c == chat] == [0, 1, 2, 3, 4]
    async with sessions() as s:
        assert all(r.status == "sent" for r in (await s.scalars(select(Outbox))).all())


async def test_429_storm_delays_but_loses_nothing_and_keeps_order(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = VirtualClock()
    sender = RecordingSender(clock)
    chats = [str(2000 + i) for i in range(10)]
    for chat in chats[:5]:
        sender.script[chat] = [RetryAfter(7), RetryAfter(3)]
    await _queue(sessions, clock, chats, per_chat=4)
    stats = await _worker(sessions, clock, sender).drain(wait_for_retries=True)
    assert stats.sent == 40 and stats.retried == 10 and stats.failed == 0
    for chat in chats:
        assert [p["n"] for _, c, p in sender.sent if c == chat] == [0, 1, 2, 3]
    _check_limits(sender.sent)
    assert clock.now >= 10  # the pauses were honoured


async def test_blocked_recipient_is_marked_inactive_and_others_continue(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = VirtualClock()
    sender = RecordingSender(clock)
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "3001")
    sender.script["3001"] = [RecipientGone("Forbidden: bot was blocked by the user")]
    await _queue(sessions, clock, ["3001"], per_chat=1, user_id=user.id)
    await _queue(sessions, clock, ["3002"], per_chat=2)
    stats = await _worker(sessions, clock, sender).drain(wait_for_retries=True)
    assert stats.sent == 2 and stats.failed == 1 and stats.gone_recipients == {"telegram:3001"}
    async with sessions() as s:
        assert (await s.get(User, user.id)).active is False  # type: ignore[union-attr]
        failed = (await s.scalars(select(Outbox).where(Outbox.recipient == "3001"))).one()
        assert failed.status == "failed" and "blocked" in (failed.last_error or "")


async def test_transient_errors_back_off_then_give_up(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = VirtualClock()
    sender = RecordingSender(clock)
    sender.script["4001"] = [ConnectionError("reset")] * 2
    sender.script["4002"] = [ConnectionError("down")] * 20
    await _queue(sessions, clock, ["4001", "4002"], per_chat=1)
    worker = _worker(sessions, clock, sender)
    worker.retry = replace(worker.retry, attempts=3)
    stats = await worker.drain(wait_for_retries=True)
    assert [c for _, c, _ in sender.sent] == ["4001"]
    assert stats.failed == 1
    async with sessions() as s:
        rows = {r.recipient: r for r in (await s.scalars(select(Outbox))).all()}
    assert rows["4002"].status == "failed" and rows["4002"].attempts == 3
    assert rows["4001"].status == "sent" and rows["4001"].attempts == 2


class TimedSender(RecordingSender):
    """Also records when each attempt left, failed or not."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(clock)
        self.tried: list[float] = []

    async def send(self, recipient: str, payload: dict[str, Any]) -> None:
        self.tried.append(self.clock())
        await super().send(recipient, payload)


@pytest.mark.parametrize(
    ("policy", "gaps"),
    [
        (DELIVERY_RETRY, [2.0, 4.0, 8.0]),
        (RetryPolicy(attempts=5, base_delay_s=10.0, max_delay_s=15.0), [10.0, 15.0, 15.0]),
    ],
)
async def test_the_backoff_follows_the_workers_retry_policy(
    sessions: async_sessionmaker[AsyncSession], policy: RetryPolicy, gaps: list[float]
) -> None:
    clock = VirtualClock()
    sender = TimedSender(clock)
    sender.script["4101"] = [ConnectionError("reset")] * 3
    await _queue(sessions, clock, ["4101"], per_chat=1)
    worker = DeliveryWorker(
        sessions, {"telegram": sender}, clock=clock, sleep=clock.sleep, wall=clock.wall, retry=policy
    )
    stats = await worker.drain(wait_for_retries=True)
    assert stats.sent == 1 and len(sender.tried) == 4
    waited = [b - a for a, b in itertools.pairwise(sender.tried)]
    assert all(g <= w < g + 1.0 for g, w in zip(gaps, waited, strict=True)), waited  # doubling, capped


async def test_rows_survive_a_restart(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = VirtualClock()
    first = RecordingSender(clock)
    first.script["5001"] = [RetryAfter(30)]
    await _queue(sessions, clock, ["5001"], per_chat=3)
    await _worker(sessions, clock, first).drain()  # stops with the chat waiting for its retry
    assert first.sent == []
    clock.now += 31  # a new process later
    second = RecordingSender(clock)
    stats = await _worker(sessions, clock, second).drain()
    assert [p["n"] for _, _, p in second.sent] == [0, 1, 2] and stats.sent == 3


class _SharedSender(RecordingSender):
    """Records every send of several workers into one list, yielding to the loop so the workers interleave."""

    def __init__(self, clock: VirtualClock, log: list[tuple[str, int]], name: str) -> None:
        super().__init__(clock)
        self.log, self.name = log, name

    async def send(self, recipient: str, payload: dict) -> None:
        await asyncio.sleep(0)
        self.log.append((self.name, payload["row"]))


async def test_two_workers_on_one_database_send_each_row_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        for n in range(2000):
            await outbox.enqueue(s, platform="telegram", recipient=str(10_000 + n % 400), payload={"row": n})
    sent: list[tuple[str, int]] = []
    fast = {"telegram": PlatformLimits(per_second=100_000, chat_interval_s=0.0, group_interval_s=0.0)}
    workers = [
        DeliveryWorker(
            sessions, {"telegram": _SharedSender(VirtualClock(), sent, name)}, limits=fast, batch=250, worker_id=name
        )
        for name in ("a", "b")
    ]
    results = await asyncio.gather(*(w.drain() for w in workers))
    rows = [n for _, n in sent]
    assert len(rows) == len(set(rows)), f"{len(rows) - len(set(rows))} duplicates"
    assert set(rows) == set(range(2000)), f"{2000 - len(set(rows))} lost"
    assert sum(r.sent for r in results) == 2000
    assert {w for w, _ in sent} == {"a", "b"}, "both workers took part (the claims split the work)"
    async with sessions() as s:
        assert {r.status for r in (await s.scalars(select(Outbox))).all()} == {"sent"}


async def test_rows_of_a_crashed_worker_wait_for_its_lease_then_go_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = VirtualClock()
    await _queue(sessions, clock, ["6001", "6002"], per_chat=2)
    crashed = DeliveryWorker(
        sessions,
        {"telegram": RecordingSender(clock)},
        clock=clock,
        sleep=clock.sleep,
        wall=clock.wall,
        worker_id="crashed",
        lease_s=60,
    )
    chats, _ = await crashed._load()  # claimed, then the process dies before sending or releasing
    assert sum(len(c.rows) for c in chats) == 4
    other = RecordingSender(clock)
    standby = DeliveryWorker(
        sessions, {"telegram": other}, clock=clock, sleep=clock.sleep, wall=clock.wall, worker_id="b", lease_s=60
    )
    assert (await standby.drain()).sent == 0 and other.sent == []  # the live lease is respected
    clock.now += 61
    stats = await standby.drain(wait_for_retries=True)
    assert stats.sent == 4
    assert sorted((c, p["n"]) for _, c, p in other.sent) == [("6001", 0), ("6001", 1), ("6002", 0), ("6002", 1)]
    async with sessions() as s:
        assert {(r.status, r.claimed_by) for r in (await s.scalars(select(Outbox))).all()} == {("sent", "b")}


async def test_a_clean_stop_gives_unsent_rows_back_at_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = VirtualClock()
    first = RecordingSender(clock)
    first.script["7001"] = [RetryAfter(5)]
    await _queue(sessions, clock, ["7001"], per_chat=2)
    await DeliveryWorker(
        sessions, {"telegram": first}, clock=clock, sleep=clock.sleep, wall=clock.wall, worker_id="a"
    ).drain()
    async with sessions() as s:
        assert {r.claimed_by for r in (await s.scalars(select(Outbox))).all()} == {None}
    clock.now += 6  # well inside a 60 s lease: only the release lets another worker take them now
    second = RecordingSender(clock)
    stats = await DeliveryWorker(
        sessions, {"telegram": second}, clock=clock, sleep=clock.sleep, wall=clock.wall, worker_id="b"
    ).drain()
    assert stats.sent == 2 and [p["n"] for _, _, p in second.sent] == [0, 1]


class _SlowFirstSender(RecordingSender):
    """Answers the first `slow` requests after 0.9 s, the rest at once; records when each one *arrives* (the
    platform counts it then), which for a slow request is anywhere up to its answer: here, just before it."""

    def __init__(self, slow: int) -> None:
        super().__init__(VirtualClock())
        self.slow = slow
        self.arrivals: list[float] = []

    async def send(self, recipient: str, payload: dict) -> None:
        self.attempts += 1
        if self.attempts <= self.slow:
            await asyncio.sleep(0.9)
        self.arrivals.append(time.monotonic())


async def test_no_second_sees_more_than_30_arrivals_when_latencies_spread(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as s:
        for n in range(90):
            await outbox.enqueue(s, platform="telegram", recipient=str(30_000 + n), payload={"n": n})
    sender = _SlowFirstSender(slow=30)
    stats = await DeliveryWorker(sessions, {"telegram": sender}).drain()  # real clock: latencies are real
    assert stats.sent == 90
    arrivals = sorted(sender.arrivals)
    # Counted at their start, the 30 slow ones would arrive together with the next 30 (60 within one second).
    worst = max(sum(1 for t in arrivals if a <= t < a + 1.0) for a in arrivals)
    assert worst <= 30, f"{worst} arrivals within one second"


def test_the_virtual_loop_wakes_concurrent_sleepers_on_one_clock() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(asyncio.sleep(1.0) for _ in range(30)), asyncio.sleep(3.0))
        return loop.time() - started

    elapsed = virtual_time.run(scenario())
    assert 3.0 <= elapsed < 3.5  # thirty 1 s sleepers and one 3 s sleeper together: 3 s, not 33 s


def test_the_send_slot_is_freed_at_the_answer_not_after_the_bookkeeping_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow mark_sent (a loaded database) must not stretch the platform's per-second budget."""
    real_mark = outbox.mark_sent

    async def slow_mark(*args: object, **kwargs: object) -> bool:
        await asyncio.sleep(2.0)
        return await real_mark(*args, **kwargs)  # type: ignore[arg-type]

    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, virtual_time.VirtualTimeLoop)
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        async with sessions.begin() as s:
            for i in range(10):
                await outbox.enqueue(s, platform="telegram", recipient=str(500 + i), payload={"n": i}, now=loop.wall())
        sender = RecordingSender(loop.time)  # type: ignore[arg-type]
        limits = {"telegram": PlatformLimits(per_second=2, chat_interval_s=1.0, group_interval_s=1.0)}
        worker = DeliveryWorker(sessions, {"telegram": sender}, limits=limits, clock=loop.time, wall=loop.wall)
        monkeypatch.setattr(outbox, "mark_sent", slow_mark)
        await worker.drain()
        await engine.dispose()
        return sorted(t for t, _, _ in sender.sent)

    times = virtual_time.run(scenario())
    assert len(times) == 10
    # 2 per second from the answers: the tenth request starts about 4 s after the first. Counting from after the
    # 2 s bookkeeping write holds each slot 3 s, and the tenth starts 12 s after the first.
    assert times[-1] - times[0] < 7.0
    assert all(times[i + 2] - times[i] >= 1.0 - 1e-9 for i in range(len(times) - 2))


async def test_an_idle_drain_is_one_claim_and_no_release(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    clock = VirtualClock()
    sender = RecordingSender(clock)
    worker = DeliveryWorker(sessions, {"telegram": sender}, clock=clock, sleep=clock.sleep, wall=clock.wall)
    with sql_trace.statements(engine) as statements:
        for _ in range(3):
            assert (await worker.drain()).sent == 0
    writes = [s for s in statements if s == "UPDATE"]  # the UPDATEs (SQLite's BEGIN IMMEDIATE is a statement too)
    assert len(writes) == 3, statements  # each round's claim found nothing: nothing to give back
    # Rows waiting for a retry are still given back when the drain ends.
    await _queue(sessions, clock, ["7001"], per_chat=1)
    async with sessions.begin() as s:
        await s.execute(update(Outbox).values(next_attempt_at=clock.wall() + timedelta(seconds=30)))
    await worker.drain()
    async with sessions() as s:
        assert [(r.status, r.claimed_by) for r in (await s.scalars(select(Outbox))).all()] == [("pending", None)]


@pytest.mark.postgres
async def test_on_postgresql_each_send_is_marked_by_one_statement_outside_any_transaction(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite marks in a session's transaction")
    clock = VirtualClock()
    await _queue(sessions, clock, ["7001", "7002", "7003"], per_chat=1)
    sender = RecordingSender(clock)
    worker = DeliveryWorker(sessions, {"telegram": sender}, clock=clock, sleep=clock.sleep, wall=clock.wall)
    with sql_trace.transactions_begun(engine) as begins:
        assert (await worker.drain()).sent == 3
    assert len(begins) == 2  # the two claims (the second found nothing); the three marks are no transaction
    async with sessions() as s:
        rows = (await s.scalars(select(Outbox))).all()
    assert {(r.status, r.lease_until, r.sent_at is not None) for r in rows} == {("sent", None, True)}
    # The guard of a mark: only while the worker still holds the row; without a worker, whoever holds it.
    await _queue(sessions, clock, ["7004"], per_chat=1)
    async with sessions() as s:
        row_id = (await s.scalars(select(col(Outbox.id)).where(col(Outbox.recipient) == "7004"))).one()
    assert row_id is not None
    async with autocommit_driver(engine) as db:
        assert not await outbox.mark_sent(db, row_id, now=clock.wall(), worker="someone-else")
        assert await outbox.mark_sent(db, row_id, now=clock.wall())
    async with sessions() as s:
        assert (await s.get(Outbox, row_id)).status == "sent"  # type: ignore[union-attr]
