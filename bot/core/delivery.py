"""Outbox delivery: sends queued messages under per-platform rate limits, in order per chat, never losing one.

Guarantees: messages to one chat go out in the order they were queued (one in flight per chat); a 429
pauses the whole platform for `retry_after` and the message is retried; a recipient that blocked the bot
(403) is marked inactive and its message failed; other errors back off exponentially (`DELIVERY_RETRY`: 2 s
doubling to 5 minutes, eight attempts in all) between drains, the schedule kept in the row.

Several processes may run a worker on one database: each claims the rows it sends (a worker id and a lease,
`FOR UPDATE SKIP LOCKED`), renews the lease while it works and gives unsent rows back when it stops; rows of a
worker that died are taken over once its lease expires. A send is marked in its own transaction the moment it
returns, while it still holds its slot (at most `concurrency` sends in flight), so nothing is lost; a crash in the
instant between a send and its mark resends that message after the lease (Telegram has no idempotency key to
detect it), which is the only duplicate the outbox can produce: at most `concurrency` messages per killed worker.
In `bastion serve` only the leader runs delivery (the per-bot limit is global), so claims are the safety net, not
the plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.core.ratelimit import DEFAULT_LIMITS, PlatformLimits, RateLimiter
from storage.models import Outbox, User
from storage.repositories import outbox as outbox_repo
from storage.repositories._driver import driver_engine, single_statement
from storage.retry import RetryPolicy
from storage.types import utcnow

log = logging.getLogger(__name__)
# The schedule of a message that failed for another reason than a 429 or a gone recipient: 2, 4, 8 ... s, at most
# five minutes apart, then failed for good. Only the arithmetic is used: the waiting happens between drains.
DELIVERY_RETRY = RetryPolicy(attempts=8, base_delay_s=2.0, max_delay_s=300.0)


class RetryAfter(Exception):
    """The platform asked to slow down (HTTP 429) for `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g}s")
        self.seconds = seconds


class RecipientGone(Exception):
    """The recipient can no longer be reached (blocked the bot, left, deleted): never retry."""


class Sender(Protocol):
    """One platform's way of sending an outbox payload."""

    platform: str

    def is_group(self, recipient: str) -> bool:
        """True for group chats (slower per-chat limit)."""
        ...

    async def send(self, recipient: str, payload: dict[str, Any]) -> None:
        """Deliver one message; raise RetryAfter, RecipientGone, or any other error for a retry."""
        ...


@dataclass
class DeliveryStats:
    """What a drain did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    gone_recipients: set[str] = field(default_factory=set)


@dataclass
class _Chat:
    platform: str
    recipient: str
    rows: deque[Outbox]


class DeliveryWorker:
    """Drains the outbox through the platform senders."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        *,
        limits: Mapping[str, PlatformLimits] = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall: Callable[[], datetime] = utcnow,
        batch: int = 2000,
        retry: RetryPolicy = DELIVERY_RETRY,
        concurrency: int = 8,
        worker_id: str | None = None,
        lease_s: float = 60.0,
    ) -> None:
        self.sessions = sessions
        # The marks of sends go to the driver directly where there is one (PostgreSQL; see _mark).
        self._engine = driver_engine(sessions)
        self.worker_id = worker_id or default_worker_id()
        self.lease = timedelta(seconds=lease_s)
        self._renew_at: datetime | None = None
        self._holding = True  # whether this worker may hold claimed rows (until a claim finds none)
        self.senders = dict(senders)
        self.limiters = {p: RateLimiter(limits[p]) for p in self.senders}
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self.batch, self.retry = batch, retry
        # Eight requests in flight reach 30 msg/s up to a 260 ms round trip; each is also one message a crash may
        # leave sent and unmarked.
        self.concurrency = concurrency
        self.gate = asyncio.Semaphore(concurrency)

    async def drain(self, *, wait_for_retries: bool = False) -> DeliveryStats:
        """Send everything due now (and what becomes due meanwhile); with `wait_for_retries`, until the
        outbox is empty, sleeping through retry delays. Returns the counts."""
        stats = DeliveryStats()
        try:
            while True:
                chats, next_due = await self._load()
                if not chats:
                    if not (wait_for_retries and next_due is not None):
                        return stats
                    await self.sleep(max(0.0, (next_due - self.wall()).total_seconds()))
                    continue
                await self._round(chats, stats)
        finally:
            # Claims live only while a drain works on them: rows waiting for a retry are free between drains. When
            # the last claim found nothing, nothing is held (a claim returns the worker's own rows too): no write,
            # which spares an idle worker's second transaction each round.
            if self._holding:
                await self.release()

    async def run(self, stop: asyncio.Event, idle_s: float = 1.0) -> None:
        """Drain repeatedly until `stop` is set."""
        while not stop.is_set():
            try:
                await self.drain()
            except Exception:  # the worker must survive a database hiccup; rows stay pending
                log.exception("outbox delivery round failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=idle_s)
            except TimeoutError:
                continue

    async def release(self) -> None:
        """Give back this worker's unsent rows so another worker takes them at once."""
        try:
            async with self.sessions.begin() as session:
                await outbox_repo.release(session, self.worker_id)
            self._holding = False
        except Exception:  # their leases expire anyway
            log.warning("could not release claimed outbox rows", exc_info=True)

    async def _load(self) -> tuple[list[_Chat], datetime | None]:
        now = self.wall()
        async with self.sessions.begin() as session:
            rows = await outbox_repo.claim(
                session, self.worker_id, platforms=list(self.senders), lease=self.lease, limit=self.batch, now=now
            )
        self._renew_at = now + self.lease / 3
        self._holding = bool(rows)
        chats: dict[tuple[str, str], _Chat] = {}
        for row in rows:
            key = (row.platform, row.recipient)
            chats.setdefault(key, _Chat(row.platform, row.recipient, deque())).rows.append(row)
        # A chat whose oldest message is waiting for a retry holds back its later ones: order per chat.
        due = [c for c in chats.values() if c.rows[0].next_attempt_at <= now]
        waiting = [c.rows[0].next_attempt_at for c in chats.values() if c.rows[0].next_attempt_at > now]
        return due, min(waiting) if waiting else None

    async def _round(self, chats: list[_Chat], stats: DeliveryStats) -> None:
        await asyncio.gather(*(self._chat(c, stats) for c in chats))

    async def _chat(self, chat: _Chat, stats: DeliveryStats) -> None:
        sender, limiter = self.senders[chat.platform], self.limiters[chat.platform]
        group = sender.is_group(chat.recipient)
        while chat.rows:
            row = chat.rows[0]
            if row.next_attempt_at > self.wall():
                return
            await self._renew()
            async with self.gate:
                # Check, record and start the request with no await in between: the limit holds exactly.
                while (at := limiter.ready_at(chat.recipient, group, self.clock())) > self.clock():
                    await self.sleep(at - self.clock())
                limiter.record(chat.recipient, self.clock())
                outcome = await self._send_one(sender, limiter, row, stats)
            if outcome != "sent":
                if outcome == "gone":
                    stats.gone_recipients.add(f"{chat.platform}:{chat.recipient}")
                    chat.rows.popleft()
                    continue
                return  # retry later: the rest of this chat waits behind it
            chat.rows.popleft()

    async def _send_one(self, sender: Sender, limiter: RateLimiter, row: Outbox, stats: DeliveryStats) -> str:
        assert row.id is not None
        try:
            try:
                await sender.send(row.recipient, row.payload)
            finally:  # answered (or failed): the slot counts from now, not from after the bookkeeping write below
                limiter.delivered(row.recipient, self.clock())
        except RetryAfter as exc:
            limiter.pause(self.clock() + exc.seconds)
            await self._retry(row, f"429 retry after {exc.seconds:g}s", timedelta(seconds=exc.seconds))
            stats.retried += 1
            return "retry"
        except RecipientGone as exc:
            await self._gone(row, str(exc) or "recipient unreachable")
            stats.failed += 1
            return "gone"
        except Exception as exc:
            attempts = row.attempts + 1
            delay = None if attempts >= self.retry.attempts else timedelta(seconds=self.retry.delay_s(attempts - 1))
            await self._retry(row, f"{type(exc).__name__}: {exc}", delay)
            if delay is None:
                stats.failed += 1
                return "gone"
            stats.retried += 1
            return "retry"
        async with self._mark() as db:
            if not await outbox_repo.mark_sent(db, row.id, now=self.wall(), worker=self.worker_id):
                # The lease ran out under us (a stall longer than the lease): the message did go, say so.
                log.warning("outbox row %s was sent after its claim expired; it may be sent twice", row.id)
                await outbox_repo.mark_sent(db, row.id, now=self.wall())
        stats.sent += 1
        return "sent"

    def _mark(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Where a send's mark runs: on PostgreSQL a pooled connection's driver outside any transaction (each
        UPDATE commits by itself, one round trip instead of three), else a session in a write transaction."""
        return single_statement(self.sessions, self._engine)

    async def _renew(self) -> None:
        # Checked before each send rather than by a timer task, so a virtual clock in tests stays exact.
        if self._renew_at is None or self.wall() < self._renew_at:
            return
        self._renew_at = self.wall() + self.lease / 3
        async with self.sessions.begin() as session:
            await outbox_repo.renew(session, self.worker_id, self.lease, now=self.wall())

    async def _retry(self, row: Outbox, error: str, delay: timedelta | None) -> None:
        assert row.id is not None
        async with self.sessions.begin() as session:
            await outbox_repo.mark_attempt_failed(session, row.id, error, retry_after=delay, now=self.wall())
        row.attempts += 1
        if delay is not None:
            row.next_attempt_at = self.wall() + delay

    async def _gone(self, row: Outbox, error: str) -> None:
        assert row.id is not None
        async with self.sessions.begin() as session:
            await outbox_repo.mark_attempt_failed(session, row.id, error, retry_after=None, now=self.wall())
            if row.user_id is not None:
                await session.execute(
                    update(User).where(col(User.id) == row.user_id).values(active=False, updated_at=self.wall())
                )


def default_worker_id() -> str:
    """A worker id unique across hosts, processes and restarts: host, pid and a random suffix."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
