"""Users looked up in batches: the lookups that arrive while one batch is at the database go together in the next.

Every message needs its sender's row (created on first contact). Looked up one by one, twenty people writing
at once cost twenty reads and twenty write transactions, and on SQLite the writes queue behind its single
writer. Here the first lookup starts a batch at once; lookups arriving meanwhile (the rest of a getUpdates round,
other chats) wait for it to finish and then go together: one read for all of them, and one write transaction for
those who are new or had gone. Nobody waits for a timer, only for the batch in front of them. Two lookups of one
user share one answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.repositories import users as users_repo
from storage.repositories.users import Identity

Key = tuple[str, str]  # (platform, platform user id)
MAX_BATCH = 500  # users per batch: a few statements of users_repo.IDENTITY_CHUNK each at most


def _by_platform(keys: Iterable[Key]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for platform, ref in keys:
        grouped[platform].append(ref)
    return grouped


def _consume(future: asyncio.Future[Identity]) -> None:
    # A lookup whose every caller was cancelled still fails or succeeds; nobody is left to read its error.
    if not future.cancelled():
        future.exception()


class IdentityBatcher:
    """One read (and at most one write transaction) per batch of user lookups; callers wait only on the batch."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, max_batch: int = MAX_BATCH) -> None:
        self.sessions = sessions
        self.max_batch = max_batch
        self._queued: dict[Key, str | None] = {}  # waiting for the next batch, with the display name to store
        self._answers: dict[Key, asyncio.Future[Identity]] = {}  # queued or in a batch now
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0  # batches run (tests and benchmarks)

    async def identity(self, platform: str, user_ref: str, display_name: str | None = None) -> Identity:
        """The user's identity: created if new, marked active again if they had gone."""
        key = (platform, user_ref)
        answer = self._answers.get(key)
        if answer is None:
            answer = asyncio.get_running_loop().create_future()
            answer.add_done_callback(_consume)
            self._answers[key] = answer
            self._queued[key] = display_name
            worker = self._worker
            if worker is None or worker.done() or worker.get_loop() is not answer.get_loop():
                self._worker = asyncio.create_task(self._run(), name="identity-batches")
        # Shielded: one cancelled caller (its update timed out) must not cancel the answer the others wait on.
        return await asyncio.shield(answer)

    async def _run(self) -> None:
        while self._queued:
            batch = dict(list(self._queued.items())[: self.max_batch])
            for key in batch:
                del self._queued[key]
            self.batches += 1
            try:
                found = await self._load(batch)
            except BaseException as exc:
                for key in batch:
                    self._settle(key, exc)
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    for key in list(self._queued):
                        self._settle(key, exc)
                    self._queued.clear()
                    raise
                continue
            for key in batch:
                self._settle(key, found[key])

    def _settle(self, key: Key, outcome: Identity | BaseException) -> None:
        answer = self._answers.pop(key, None)
        if answer is None or answer.done():
            return
        if isinstance(outcome, Exception):
            answer.set_exception(outcome)
        elif isinstance(outcome, BaseException):
            answer.cancel()  # the worker itself was stopped (shutdown)
        else:
            answer.set_result(outcome)

    async def _load(self, batch: dict[Key, str | None]) -> dict[Key, Identity]:
        found: dict[Key, Identity] = {}
        # Read first: returning users cost no write (SQLite has one writer; a burst must not queue on it).
        async with self.sessions() as session:
            for platform, refs in _by_platform(batch).items():
                rows = await users_repo.find_identities(session, platform, refs)
                found.update(((platform, ref), identity) for ref, identity in rows.items())
        to_reach = [key for key in batch if key not in found or not found[key].active]
        if to_reach:
            async with self.sessions.begin() as session:  # they wrote to us, so they exist and are reachable
                for platform, refs in _by_platform(to_reach).items():
                    people = {ref: batch[(platform, ref)] for ref in refs}
                    rows = await users_repo.reach_identities(session, platform, people)
                    found.update(((platform, ref), identity) for ref, identity in rows.items())
        return found
