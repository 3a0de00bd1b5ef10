"""The inbox's replies in the response body: the call a turn held is stored with the update's mark and answered;
a repeat of the update gets that same call, also when it arrives while the first delivery is still being handled
(on this worker or another), and a turn past the budget sends its held message itself, once."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api.inbox import WebhookInbox
from bot.api.webhook_reply import CURRENT_SLOT

CALL = {"method": "sendMessage", "chat_id": 5, "text": "BTC 97,000"}


class Holding:
    """A turn that answers with one final message: held in the request's slot, or sent when there is none."""

    def __init__(self, release: asyncio.Event) -> None:
        self.release = release
        self.turns = 0
        self.sent: list[dict[str, Any]] = []

    async def process(self, data: dict[str, Any]) -> None:
        await self.release.wait()
        self.turns += 1
        slot = CURRENT_SLOT.get()

        async def send() -> str:
            self.sent.append(CALL)
            return "5:1"

        if slot is None or not slot.hold(CALL, send):
            await send()

    def duplicate(self, update_id: int) -> None:
        pass


def _inbox(sessions: async_sessionmaker[AsyncSession], processor: Holding, name: str, **kw: Any) -> WebhookInbox:
    inbox = WebhookInbox(sessions, processor, worker_id=name, reply_budget_s=2.0, **kw)
    inbox.ready.set()
    return inbox


async def test_a_repeat_arriving_while_its_update_runs_elsewhere_gets_the_reply_the_turn_held(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    release = asyncio.Event()
    processor = Holding(release)
    a, b = _inbox(sessions, processor, "a"), _inbox(sessions, processor, "b")
    first = asyncio.create_task(a.answer({"update_id": 1}))
    await asyncio.sleep(0.1)  # stored by a, its turn running
    repeat = asyncio.create_task(b.answer({"update_id": 1}))  # the first request's connection dropped
    await asyncio.sleep(0.2)
    release.set()
    assert await first == CALL
    assert await repeat == CALL  # the same call, read from a's mark: the reply is not lost with the first answer
    assert processor.turns == 1 and processor.sent == []


async def test_a_repeat_on_the_same_worker_waits_for_the_first_requests_answer(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    release = asyncio.Event()
    processor = Holding(release)
    inbox = _inbox(sessions, processor, "a")
    first = asyncio.create_task(inbox.answer({"update_id": 2}))
    await asyncio.sleep(0.1)
    repeat = asyncio.create_task(inbox.answer({"update_id": 2}))
    await asyncio.sleep(0.1)
    release.set()
    assert await asyncio.gather(first, repeat) == [CALL, CALL]
    assert await inbox.answer({"update_id": 2}) == CALL  # a later repeat: the stored call
    assert processor.turns == 1 and processor.sent == []


async def test_a_turn_past_the_budget_answers_empty_and_sends_its_message_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    release = asyncio.Event()
    processor = Holding(release)
    inbox = WebhookInbox(sessions, processor, worker_id="a", reply_budget_s=0.2)
    inbox.ready.set()
    assert await inbox.answer({"update_id": 3}) is None  # the budget ran out first
    release.set()
    await inbox.drain()
    assert processor.turns == 1 and processor.sent == [CALL]  # the turn's slot was closed: sent the normal way
    assert await inbox.answer({"update_id": 3}) is None  # nothing stored to answer a repeat with
    assert processor.sent == [CALL]
