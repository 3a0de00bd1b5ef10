"""The webhook inbox's at-least-once window: a killed worker leaves at most `inbox_concurrency` updates answered
and unmarked, and a live worker never handles a row another worker took over while it waited for a slot."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bastion.settings import Settings
from bot.api.inbox import WebhookInbox
from storage.models import InboxUpdate


class Answering:
    """Answers each update at once (counted), then takes `after_s` to finish (the bookkeeping after the answer)."""

    def __init__(self, answered: Counter[int], after_s: float = 0.0) -> None:
        self.answered = answered
        self.after_s = after_s

    async def process(self, data: dict[str, Any]) -> None:
        self.answered[data["update_id"]] += 1
        await asyncio.sleep(self.after_s)

    def duplicate(self, update_id: int) -> None:
        """Repeats are not counted here."""


async def _statuses(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as s:
        return set((await s.scalars(select(col(InboxUpdate.status)))).all())


async def test_a_worker_killed_mid_run_repeats_at_most_its_concurrency_and_loses_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bound = Settings().api.inbox_concurrency  # what `bastion serve` hands the inbox
    answered: Counter[int] = Counter()
    doomed = WebhookInbox(sessions, Answering(answered, after_s=60), worker_id="doomed", lease_s=0.3)
    doomed.ready.set()
    for n in range(1, 41):  # forty updates answered 200 at once (Telegram's max_connections)
        assert await doomed.feed({"update_id": n}) == "stored"
    await asyncio.sleep(0.05)
    in_window = sum(answered.values())
    for task in list(doomed._tasks):  # SIGKILL: answered updates are not marked, waiting ones never start
        task.cancel()
    await asyncio.gather(*doomed._tasks, return_exceptions=True)
    assert in_window == bound <= 8  # a handful, not the 32 a worker used to hold at once
    await asyncio.sleep(0.35)  # its leases end
    survivor = WebhookInbox(sessions, Answering(answered), worker_id="survivor", lease_s=0.3)
    survivor.ready.set()
    assert await survivor.recover() == 40
    await survivor.drain()
    assert set(answered) == set(range(1, 41)), "an update was lost"
    assert sum(c - 1 for c in answered.values()) == in_window  # only the kill window is answered twice
    assert await _statuses(sessions) == {"done"}


async def test_a_row_taken_over_while_it_waited_for_a_slot_is_not_handled_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    answered: Counter[int] = Counter()
    slow = WebhookInbox(sessions, Answering(answered), worker_id="slow", lease_s=0.3, concurrency=1)
    slow.ready.set()
    await slow.gate.acquire()  # its one slot is busy, and its loop too busy to renew the leases
    for n in (1, 2):
        assert await slow.feed({"update_id": n}) == "stored"
    await asyncio.sleep(0.35)
    other = WebhookInbox(sessions, Answering(answered), worker_id="other", lease_s=5)
    other.ready.set()
    assert await other.recover() == 2  # the lapsed leases hand both to the other worker, which answers them
    await other.drain()
    slow.gate.release()
    await slow.drain()  # the slow worker checks its claim before handling: gone, so it leaves them
    assert answered == {1: 1, 2: 1}
    assert await _statuses(sessions) == {"done"}
