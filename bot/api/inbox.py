"""The durable webhook inbox: an update is stored before the 200 answer, handled once, and survives a crash.

Whichever API worker stores an update first (unique `update_id`) owns it under a lease and handles it as soon as
one of its `concurrency` slots is free; Telegram's retries of it, on any worker, find the row and are dropped. A
worker that dies after answering leaves its rows pending: once their lease expires, the recovery pass of any live
worker claims and handles them (`FOR UPDATE SKIP LOCKED`, so two workers never take the same row).

The at-least-once window: an update is marked handled in its own transaction right after its handlers ran (the
answer sent), before its slot takes the next one, so a worker killed at any instant has at most `concurrency`
updates answered but not marked; those, and only those, are answered a second time by the worker that recovers
them (Telegram has no idempotency key to detect it). An update still waiting for a slot was not answered: it is
handled once, here or by the recovering worker. A row whose lease may have lapsed while it waited (a busy loop
renews late) is claimed again before it is handled and left alone when another worker took it, so a live worker
never doubles an update.

Group commits: the stores of concurrent requests are one multi-row INSERT, and the marks of concurrent slots one
UPDATE (`storage.group_commit`). Each request still answers only after its own row committed, and each slot takes
its next update only after its own mark committed, so both statements above hold unchanged; the window stays at
most `concurrency`. On PostgreSQL each of those statements runs on a pooled connection's driver outside any
transaction (`storage.repositories._driver`): it commits by itself before it answers, one round trip instead of
three (BEGIN, the statement, COMMIT) and none of a session's per-statement work. A store whose answer was lost
after it committed fails its request; Telegram's retry is then a repeat, and the row, pending under this worker's
lease, is handled once by recovery after the lease, as after a crash.

Replies in the response body (`reply_budget_s` > 0): the request waits up to that long for its update's turn;
a final single message the turn held (`bot.api.webhook_reply`) is stored with the mark, in the same statement,
and answered as the response body, and a retry of that update is answered with the stored call again. Past the
budget the request answers empty and the turn sends normally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.api.webhook_reply import CURRENT_SLOT, ReplySlot
from bot.core.delivery import default_worker_id
from storage.group_commit import GroupCommit
from storage.models import InboxStatus, InboxUpdate
from storage.repositories import inbox as inbox_repo
from storage.repositories._driver import driver_engine, single_statement
from storage.repositories._lease import renew_leases
from storage.types import utcnow

log = logging.getLogger(__name__)
# How often a repeat of an update another worker is handling reads its row for the stored reply.
REPLY_POLL_S = 0.1


class ProcessorStopped(Exception):
    """The channel is shutting down and cannot handle updates any more: the update stays stored for another worker."""


class UpdateProcessor(Protocol):
    """Handles one update to the end (the channel's handlers have run when it returns)."""

    async def process(self, data: dict[str, Any]) -> object:
        """Handle one update."""
        ...

    def duplicate(self, update_id: int) -> None:
        """Count a repeat the inbox dropped."""
        ...


class WebhookInbox:
    """Stores webhook updates durably and hands each to the processor once; an `UpdateSink` for the API."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        processor: UpdateProcessor,
        *,
        platform: str = "telegram",
        worker_id: str | None = None,
        lease_s: float = 120.0,
        concurrency: int = 8,
        retention: timedelta = timedelta(days=2),
        reply_budget_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        # The stores and marks go to the driver directly where there is one (PostgreSQL; see _write).
        self._engine = driver_engine(sessions)
        self.processor = processor
        self.platform = platform
        self.worker_id = worker_id or default_worker_id()
        # Longer than any turn: a live worker's update is never taken over while it is still being handled.
        self.lease = timedelta(seconds=lease_s)
        self.retention = retention
        # The at-least-once bound: at most this many updates are answered and not yet marked at any instant.
        self.concurrency = concurrency
        self.gate = asyncio.Semaphore(concurrency)
        self.clock = clock
        self._renewed_at = clock()  # when the last renewal of this worker's leases began
        self._tasks: set[asyncio.Task[None]] = set()
        # Set once the processor can handle updates: the API may store some before the channel has started.
        self.ready = asyncio.Event()
        self.stored = self.duplicates = self.recovered = 0
        # How long a request waits for its update's turn to answer it in the response body (0: never).
        self.reply_budget_s = reply_budget_s
        self._slots: dict[int, ReplySlot] = {}  # row id → the slot of the request waiting for it
        self._waiting: dict[int, ReplySlot] = {}  # update id → that slot, until its answer is known (for repeats)
        self._stores: GroupCommit[tuple[int, dict[str, Any]], int | None] = GroupCommit(self._store_batch)
        # A mark is harmless to write twice: a batch that met a dropped connection is written again.
        self._marks: GroupCommit[tuple[int, dict[str, Any] | None], None] = GroupCommit(
            self._mark_batch, retry_disconnect=True
        )
        self.answered_in_body = 0

    async def feed(self, data: dict[str, Any]) -> str:
        """Store the update (claimed by this worker) and start handling it; "duplicate" for a repeat.

        Returns only after the row is committed, so the 200 the API answers next never loses an update."""
        verdict, _ = await self._feed(data)
        return verdict

    async def answer(self, data: dict[str, Any]) -> dict[str, Any] | None:
        """`feed`, then the Bot API call to answer the request with: the update's final single message when its
        turn ends within the reply budget (or the one stored for it, for a retry), else None (answer empty)."""
        verdict, slot = await self._feed(data)
        if slot is not None:
            try:
                return await asyncio.wait_for(asyncio.shield(slot.answer), self.reply_budget_s)
            except TimeoutError:
                if slot.close():
                    return None
                return await slot.answer  # the turn ended and its mark is being written: answer what it stores
        if verdict == "duplicate" and self.reply_budget_s > 0:
            return await self._stored_answer(data["update_id"])
        return None

    async def _stored_answer(self, update_id: int) -> dict[str, Any] | None:
        """The call stored for a repeated update. Telegram repeats an update only when it saw no answer: one still
        being handled lost its first request (a dropped connection) and its reply must come with this answer, so
        wait for its mark (up to twice the budget, after which its handling has sent any reply itself)."""
        waiting = self._waiting.get(update_id)
        if waiting is not None:  # handled here: the first request's slot says what it answers
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(waiting.answer), 2 * self.reply_budget_s)
            return None
        deadline = self.clock() + 2 * self.reply_budget_s
        while True:  # handled by another worker: read its row until it is marked
            async with self.sessions() as session:
                done, reply = await inbox_repo.stored_reply(session, platform=self.platform, update_id=update_id)
            if done or self.clock() >= deadline:
                return reply
            await asyncio.sleep(REPLY_POLL_S)

    async def _feed(self, data: dict[str, Any]) -> tuple[str, ReplySlot | None]:
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return "unparseable", None
        stored_at = self.clock()
        row_id = await self._stores.submit((update_id, data))
        if row_id is None:
            self.duplicates += 1
            self.processor.duplicate(update_id)
            log.info("dropped a repeated %s update %s", self.platform, update_id)
            return "duplicate", None
        self.stored += 1
        slot = None
        if self.reply_budget_s > 0:
            slot = self._slots[row_id] = self._waiting[update_id] = ReplySlot()
            slot.answer.add_done_callback(lambda _: self._waiting.pop(update_id, None))
        self._spawn(row_id, data, stored_at)
        return "stored", slot

    async def _store_batch(self, items: Sequence[tuple[int, dict[str, Any]]]) -> list[int | None]:
        # A repeat inside one batch (Telegram retried while the first was being stored) is a repeat like any other.
        first: dict[int, dict[str, Any]] = {}
        for update_id, payload in items:
            first.setdefault(update_id, payload)
        async with self._write() as db:
            stored = await inbox_repo.store_many(
                db, list(first.items()), platform=self.platform, worker=self.worker_id, lease=self.lease
            )
        results: list[int | None] = []
        for update_id, _ in items:
            results.append(stored.pop(update_id, None))  # popped: a second copy in the batch gets None
        return results

    async def _mark_batch(self, marks: Sequence[tuple[int, dict[str, Any] | None]]) -> list[None]:
        async with self._write() as db:
            await inbox_repo.mark_done_many(db, marks)
        return [None] * len(marks)

    def _write(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Where a store or mark batch (one statement) runs: on PostgreSQL a pooled connection's driver outside any
        transaction (one round trip, the statement commits itself), else a session in a write transaction."""
        return single_statement(self.sessions, self._engine)

    def _spawn(self, row_id: int, data: dict[str, Any], leased_at: float) -> None:
        task = asyncio.create_task(self._handle(row_id, data, leased_at))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _still_ours(self, row_id: int, leased_at: float) -> bool:
        """Whether this worker still holds the row: free of cost while its lease is surely running, else claimed
        again in the database (another worker may have taken it once its lease lapsed)."""
        if self.clock() - max(leased_at, self._renewed_at) < self.lease.total_seconds() / 2:
            return True
        now = utcnow()
        held = (
            col(InboxUpdate.id) == row_id,
            col(InboxUpdate.claimed_by) == self.worker_id,
            col(InboxUpdate.status) == InboxStatus.PENDING.value,
        )
        async with self.sessions.begin() as session:
            return await renew_leases(session, InboxUpdate, held, lease=self.lease, now=now) == 1

    async def _handle(self, row_id: int, data: dict[str, Any], leased_at: float) -> None:
        slot = self._slots.pop(row_id, None)
        try:
            await self._handle_in_slot(row_id, data, leased_at, slot)
        finally:
            if slot is not None:  # whatever happened, the request stops waiting, and nothing held stays unsent
                slot.release()
                slot.resolve(None)

    async def _handle_in_slot(
        self, row_id: int, data: dict[str, Any], leased_at: float, slot: ReplySlot | None
    ) -> None:
        await self.ready.wait()
        async with self.gate:
            try:
                if not await self._still_ours(row_id, leased_at):
                    log.info("%s update %s was taken over by another worker", self.platform, data.get("update_id"))
                    return
            except Exception:  # unknown: handling it risks a repeat, skipping it would lose it (this worker renews it)
                log.exception("could not check the claim of %s update %s", self.platform, data.get("update_id"))
            token = CURRENT_SLOT.set(slot)
            try:
                await self.processor.process(data)
            except ProcessorStopped:
                # Not handled at all (a stop outlasted the drain): left pending, another worker (or this one after
                # a restart) takes it once its lease ends. Marking it done here lost updates answered 200.
                log.warning(
                    "%s update %s left for another worker: the channel stopped", self.platform, data.get("update_id")
                )
                return
            except Exception:  # handled, badly: retrying a failing update would fail again and block nothing
                log.exception("%s update %s failed", self.platform, data.get("update_id"))
            finally:
                CURRENT_SLOT.reset(token)
            body = slot.take() if slot is not None else None
            try:
                await self._marks.submit((row_id, body))
            except Exception:  # it stays pending and is handled again after the lease: at-least-once
                log.exception("could not mark %s update %s handled", self.platform, data.get("update_id"))
                return  # the held message (if any) goes the normal way: the request answers empty
            if slot is not None and body is not None:
                self.answered_in_body += 1
                slot.resolve(body)

    async def renew(self) -> None:
        """Keep the leases of the updates this worker holds: a slow queue must not hand them to another."""
        if not self._tasks:
            return
        began = self.clock()
        async with self.sessions.begin() as session:
            await inbox_repo.renew(session, self.worker_id, platform=self.platform, lease=self.lease)
        self._renewed_at = began

    async def recover(self, limit: int = 500) -> int:
        """Claim and handle updates whose worker died after answering; returns how many were taken."""
        claimed_at = self.clock()
        async with self.sessions.begin() as session:
            rows = await inbox_repo.claim_stale(
                session, self.worker_id, platform=self.platform, lease=self.lease, limit=limit
            )
        for row in rows:
            assert row.id is not None
            log.warning("handling %s update %s left by a stopped worker", self.platform, row.update_id)
            self._spawn(row.id, row.payload, claimed_at)
        self.recovered += len(rows)
        return len(rows)

    async def prune(self) -> int:
        """Delete handled updates older than the retention (Telegram stops retrying within a day)."""
        async with self.sessions.begin() as session:
            return await inbox_repo.prune(session, older_than=utcnow() - self.retention)

    async def run(self, stop: asyncio.Event, every_s: float | None = None) -> None:
        """Renew this worker's leases and recover stale updates every `every_s` (a quarter lease) until `stop`;
        then wait for the updates in hand."""
        interval = every_s if every_s is not None else self.lease.total_seconds() / 4
        while not stop.is_set():
            try:
                await self.renew()
                await self.recover()
            except Exception:
                log.exception("inbox recovery failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        await self.drain()

    async def drain(self) -> None:
        """Wait for the updates being handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
