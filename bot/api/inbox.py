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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.core.delivery import default_worker_id
from storage.models import InboxStatus, InboxUpdate
from storage.repositories import inbox as inbox_repo
from storage.repositories._lease import renew_leases
from storage.types import utcnow

log = logging.getLogger(__name__)


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
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

    async def feed(self, data: dict[str, Any]) -> str:
        """Store the update (claimed by this worker) and start handling it; "duplicate" for a repeat.

        Returns only after the row is committed, so the 200 the API answers next never loses an update."""
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            return "unparseable"
        stored_at = self.clock()
        async with self.sessions.begin() as session:
            row_id = await inbox_repo.store(
                session,
                platform=self.platform,
                update_id=update_id,
                payload=data,
                worker=self.worker_id,
                lease=self.lease,
            )
        if row_id is None:
            self.duplicates += 1
            self.processor.duplicate(update_id)
            log.info("dropped a repeated %s update %s", self.platform, update_id)
            return "duplicate"
        self.stored += 1
        self._spawn(row_id, data, stored_at)
        return "stored"

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
        await self.ready.wait()
        async with self.gate:
            try:
                if not await self._still_ours(row_id, leased_at):
                    log.info("%s update %s was taken over by another worker", self.platform, data.get("update_id"))
                    return
            except Exception:  # unknown: handling it risks a repeat, skipping it would lose it (this worker renews it)
                log.exception("could not check the claim of %s update %s", self.platform, data.get("update_id"))
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
            try:
                async with self.sessions.begin() as session:
                    await inbox_repo.mark_done(session, row_id)
            except Exception:  # it stays pending and is handled again after the lease: at-least-once
                log.exception("could not mark %s update %s handled", self.platform, data.get("update_id"))

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
