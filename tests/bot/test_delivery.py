"""Outbox delivery: rate limits, order per chat, 429 storms, blocked recipients, no losses."""

from __future__ import annotations

import itertools
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.delivery import DeliveryWorker, RecipientGone, RetryAfter
from storage.models import Outbox, User
from storage.repositories import outbox
from storage.repositories.users import get_or_create_user
from tests.bot.fakes import RecordingSender, VirtualClock


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
    worker.max_attempts = 3
    stats = await worker.drain(wait_for_retries=True)
    assert [c for _, c, _ in sender.sent] == ["4001"]
    assert stats.failed == 1
    async with sessions() as s:
        rows = {r.recipient: r for r in (await s.scalars(select(Outbox))).all()}
    assert rows["4002"].status == "failed" and rows["4002"].attempts == 3
    assert rows["4001"].status == "sent" and rows["4001"].attempts == 2


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
