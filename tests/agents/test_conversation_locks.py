"""Conversation turns are serialised per thread: in-process on SQLite, across processes on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from agents.locks import ConversationLocks
from storage.db import create_engine


async def _overlaps(a: ConversationLocks, b: ConversationLocks, thread_a: str, thread_b: str) -> int:
    """Run 5 turns through each lock holder at once; count how often two bodies ran at the same time."""
    inside = 0
    overlaps = 0

    async def turn(locks: ConversationLocks, thread: str) -> None:
        nonlocal inside, overlaps
        async with locks.hold(thread):
            inside += 1
            overlaps += inside > 1
            await asyncio.sleep(0.05)
            inside -= 1

    await asyncio.gather(*(turn(x, t) for _ in range(5) for x, t in ((a, thread_a), (b, thread_b))))
    return overlaps


@pytest.mark.postgres
async def test_two_processes_never_run_one_conversation_at_once(postgres_url: str) -> None:
    # Two engines are two processes' worth of connections: only the database lock can keep them apart.
    engines = [create_engine(postgres_url), create_engine(postgres_url)]
    a, b = (ConversationLocks(async_sessionmaker(e)) for e in engines)
    try:
        assert a.across_processes and b.across_processes
        assert await _overlaps(a, b, "telegram:1", "telegram:1") == 0
        # Different conversations do not wait for each other.
        assert await _overlaps(a, b, "telegram:1", "telegram:2") > 0
    finally:
        for locks in (a, b):
            await locks.close()
        for e in engines:
            await e.dispose()


@pytest.mark.postgres
async def test_a_lock_held_by_a_dead_connection_is_freed(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    locks, other = ConversationLocks(async_sessionmaker(engine)), ConversationLocks(async_sessionmaker(engine))
    try:
        entered = asyncio.Event()

        async def crashing_turn() -> None:
            async with locks.hold("telegram:9"):
                entered.set()
                raise RuntimeError("turn failed")

        with pytest.raises(RuntimeError):
            await crashing_turn()
        assert entered.is_set()
        async with asyncio.timeout(5):  # the failed turn's transaction ended, and its lock with it
            async with other.hold("telegram:9"):
                pass
    finally:
        await locks.close()
        await other.close()
        await engine.dispose()


async def test_sqlite_serialises_within_the_process(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    locks = ConversationLocks(async_sessionmaker(engine))
    try:
        assert not locks.across_processes
        assert await _overlaps(locks, locks, "c:1", "c:1") == 0
        assert await _overlaps(locks, locks, "c:1", "c:2") > 0
    finally:
        await engine.dispose()
