"""Users looked up in batches: the lookups that arrive while one batch is at the database go together in the next.

Every message needs its sender's row (created on first contact). Looked up one by one, twenty people writing
at once cost twenty reads and twenty write transactions, and on SQLite the writes queue behind its single
writer. Here the lookups are a group commit (storage/group_commit.py) keyed by user: the first lookup starts a
batch at once; lookups arriving meanwhile (the rest of a getUpdates round, other chats) wait for it to finish and
then go together: one read for all of them, and one write transaction for those who are new or had gone. Nobody
waits for a timer, only for the batch in front of them. Two lookups of one user share one answer.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.group_commit import GroupCommit
from storage.repositories import users as users_repo
from storage.repositories._driver import autocommit_driver, driver_engine
from storage.repositories.users import Identity

Key = tuple[str, str]  # (platform, platform user id)
Lookup = tuple[Key, str | None]  # with the display name to store for a new user
MAX_BATCH = 500  # users per batch: a few statements of users_repo.IDENTITY_CHUNK each at most


def _by_platform(keys: Iterable[Key]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for platform, ref in keys:
        grouped[platform].append(ref)
    return grouped


def _key(lookup: Lookup) -> Key:
    return lookup[0]


class IdentityBatcher:
    """One read (and at most one write transaction) per batch of user lookups; callers wait only on the batch."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, max_batch: int = MAX_BATCH) -> None:
        self.sessions = sessions
        self._engine = driver_engine(sessions)
        self._lookups: GroupCommit[Lookup, Identity] = GroupCommit(self._load, max_batch=max_batch, key=_key)

    @property
    def batches(self) -> int:
        """Batches run (tests and benchmarks)."""
        return self._lookups.batches

    async def identity(self, platform: str, user_ref: str, display_name: str | None = None) -> Identity:
        """The user's identity: created if new, marked active again if they had gone."""
        return await self._lookups.submit(((platform, user_ref), display_name))

    async def _load(self, lookups: Sequence[Lookup]) -> list[Identity]:
        batch = dict(lookups)  # one per key: the group commit shares a repeated key's answer
        found: dict[Key, Identity] = {}
        # Read first: returning users cost no write (SQLite has one writer; a burst must not queue on it). On
        # PostgreSQL the read is one statement on the driver, outside any transaction (one round trip per platform).
        reads = self.sessions() if self._engine is None else autocommit_driver(self._engine)
        async with reads as reader:
            for platform, refs in _by_platform(batch).items():
                rows = await users_repo.find_identities(reader, platform, refs)
                found.update(((platform, ref), identity) for ref, identity in rows.items())
        to_reach = [key for key in batch if key not in found or not found[key].active]
        if to_reach:  # they wrote to us, so they exist and are reachable: one write transaction
            async with self._writer() as writer:
                for platform, refs in _by_platform(to_reach).items():
                    people = {ref: batch[(platform, ref)] for ref in refs}
                    rows = await users_repo.reach_identities(writer, platform, people)
                    found.update(((platform, ref), identity) for ref, identity in rows.items())
        return [found[key] for key, _ in lookups]

    @contextlib.asynccontextmanager
    async def _writer(self) -> AsyncIterator[Any]:
        """A session in a transaction; on PostgreSQL a driver connection in one (its statements skip SQLAlchemy)."""
        if self._engine is None:
            async with self.sessions.begin() as session:
                yield session
            return
        async with autocommit_driver(self._engine) as driver, driver.transaction():
            yield driver
