"""Durable webhook inbox: stored before the answer, handled once across workers, recovered after a crash."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api.inbox import ProcessorStopped, WebhookInbox
from storage.models import InboxUpdate


class Processor:
    """Counts the updates handled, shared by the workers of one test."""

    def __init__(self, handled: Counter[int]) -> None:
        self.handled = handled
        self.repeats = 0

    async def process(self, data: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.handled[data["update_id"]] += 1

    def duplicate(self, update_id: int) -> None:
        self.repeats += 1


def _inbox(sessions: async_sessionmaker[AsyncSession], handled: Counter[int], name: str, **kw: Any) -> WebhookInbox:
    inbox = WebhookInbox(sessions, Processor(handled), worker_id=name, **kw)
    inbox.ready.set()
    return inbox


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[InboxUpdate]:
    async with sessions() as s:
        return list((await s.scalars(select(InboxUpdate).order_by(InboxUpdate.id))).all())  # type: ignore[arg-type]


async def test_an_update_is_stored_before_feed_returns_and_repeats_are_dropped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handled: Counter[int] = Counter()
    inbox = WebhookInbox(sessions, Processor(handled), worker_id="a")  # not ready: nothing handled yet
    assert await inbox.feed({"update_id": 7, "message": {"text": "hi"}}) == "stored"
    rows = await _rows(sessions)
    assert [(r.update_id, r.status, r.claimed_by) for r in rows] == [(7, "pending", "a")]
    assert rows[0].payload["message"]["text"] == "hi"
    assert await inbox.feed({"update_id": 7, "message": {"text": "hi"}}) == "duplicate"
    inbox.ready.set()
    await inbox.drain()
    assert handled == {7: 1}
    assert [r.status for r in await _rows(sessions)] == ["done"]


async def test_updates_of_a_worker_that_died_after_answering_are_handled_once_by_another(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handled: Counter[int] = Counter()
    # 2 s leases, not 0.5 s: the inbox stamps them with its own clock, and the checks below that they still run
    # must not see them lapse while a loaded machine stalls.
    dead = WebhookInbox(sessions, Processor(handled), worker_id="dead", lease_s=2.0)
    for n in range(1, 6):
        assert await dead.feed({"update_id": n}) == "stored"  # answered 200, then the process died
    for task in list(dead._tasks):
        task.cancel()
    alive = _inbox(sessions, handled, "alive", lease_s=2.0)
    assert await alive.recover() == 0  # the dead worker's lease still runs: not taken yet
    await asyncio.sleep(2.1)
    assert await alive.recover() == 5
    assert await alive.recover() == 0  # claimed by the live worker now
    await alive.drain()
    assert handled == {n: 1 for n in range(1, 6)}
    assert await alive.feed({"update_id": 3}) == "duplicate"  # Telegram's late retry of one of them
    assert {(r.status, r.claimed_by) for r in await _rows(sessions)} == {("done", "alive")}


async def test_two_workers_receiving_every_update_twice_handle_each_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handled: Counter[int] = Counter()
    a, b = _inbox(sessions, handled, "a"), _inbox(sessions, handled, "b")

    async def post(n: int, first: WebhookInbox, second: WebhookInbox) -> list[str]:
        # Telegram retried: the same update reaches both workers at once.
        return list(await asyncio.gather(first.feed({"update_id": n}), second.feed({"update_id": n})))

    answers: list[list[str]] = []
    for wave in range(10):  # the stores of a wave are grouped: the worker whose batch starts first alternates
        first, second = (a, b) if wave % 2 else (b, a)
        answers += await asyncio.gather(*(post(n, first, second) for n in range(wave * 100, wave * 100 + 100)))
    await asyncio.gather(a.drain(), b.drain())
    assert all(sorted(x) == ["duplicate", "stored"] for x in answers)
    assert set(handled) == set(range(1000)), f"{1000 - len(handled)} lost"
    assert max(handled.values()) == 1, "an update was handled twice"
    assert a.stored > 0 and b.stored > 0


async def test_a_live_worker_with_a_slow_queue_keeps_its_updates(sessions: async_sessionmaker[AsyncSession]) -> None:
    handled: Counter[int] = Counter()
    # A 2 s lease, not 0.5 s: the last renewal must still run when `other` looks, even on a stalled machine.
    busy = WebhookInbox(sessions, Processor(handled), worker_id="busy", lease_s=2.0)  # its handlers are all taken
    for n in range(1, 4):
        await busy.feed({"update_id": n})
    other = _inbox(sessions, handled, "other", lease_s=2.0)
    for _ in range(3):
        await asyncio.sleep(0.8)
        await busy.renew()
    assert await other.recover() == 0  # 2.4 s > the lease, but renewed: nobody else handles them
    busy.ready.set()
    await busy.drain()
    assert handled == {1: 1, 2: 1, 3: 1}


class StoppedProcessor(Processor):
    """A channel that has shut down (a stop outlasted the inbox's drain)."""

    async def process(self, data: dict[str, Any]) -> None:
        raise ProcessorStopped("stopped")


async def test_an_update_a_stopped_channel_could_not_handle_stays_for_another_worker(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    handled: Counter[int] = Counter()
    stopping = WebhookInbox(sessions, StoppedProcessor(handled), worker_id="stopping", lease_s=0.2)
    stopping.ready.set()
    assert await stopping.feed({"update_id": 11, "message": {"text": "/price btc"}}) == "stored"
    await stopping.drain()
    assert [(r.update_id, r.status) for r in await _rows(sessions)] == [(11, "pending")]  # not marked handled
    await asyncio.sleep(0.3)  # its lease ends
    other = _inbox(sessions, handled, "other", lease_s=0.2)
    assert await other.recover() == 1
    await other.drain()
    assert handled == {11: 1}
    assert [r.status for r in await _rows(sessions)] == ["done"]
