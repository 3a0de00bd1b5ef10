"""Conversation locks: one turn at a time per thread, in this process and across the deployment's processes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.keyed_lock import KeyedLock

# First key of the two-integer advisory locks on conversations: its own space, apart from other locks.
_THREAD_LOCK_SPACE = 0x4254  # "BT"


def thread_lock_key(thread_id: str) -> int:
    """The signed 32-bit advisory lock key of a conversation (a rare collision only serialises two threads)."""
    return int.from_bytes(hashlib.sha256(thread_id.encode()).digest()[:4], "big", signed=True)


class ConversationLocks:
    """One turn at a time per conversation: an in-process lock, and on PostgreSQL an advisory lock across processes.

    The PostgreSQL lock is a transaction-level one (`pg_advisory_xact_lock`) on a connection of a small pool of
    its own: it ends with its transaction whatever happens (a crash frees it with the connection), can never be
    left behind on a pooled connection, and lock holders never take the connections their turns need for queries.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, pool_size: int = 10) -> None:
        self._local: KeyedLock[str] = KeyedLock()
        bind = sessions.kw.get("bind")
        self._engine: AsyncEngine | None = None
        if isinstance(bind, AsyncEngine) and bind.dialect.name == "postgresql":
            self._engine = create_async_engine(
                bind.url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )

    @property
    def across_processes(self) -> bool:
        """True when turns are also serialised with other processes (PostgreSQL)."""
        return self._engine is not None

    @asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the conversation `thread_id` for the body."""
        # The in-process lock first: one waiter per process on the database lock, not one per message.
        async with self._local.hold(thread_id):
            if self._engine is None:
                yield
                return
            async with self._engine.begin() as conn:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:space, :key)"),
                    {"space": _THREAD_LOCK_SPACE, "key": thread_lock_key(thread_id)},
                )
                yield

    async def close(self) -> None:
        """Close the lock connections."""
        if self._engine is not None:
            await self._engine.dispose()
