"""The one keyed lock: one body at a time per key, keys independent, entries gone once nobody holds or waits."""

from __future__ import annotations

import asyncio

import pytest

from storage.keyed_lock import KeyedLock


async def test_one_key_runs_its_bodies_one_at_a_time() -> None:
    locks: KeyedLock[str] = KeyedLock()
    events: list[str] = []
    release = asyncio.Event()

    async def first() -> None:
        async with locks.hold("t1"):
            events.append("first in")
            await release.wait()
            events.append("first out")

    async def second() -> None:
        async with locks.hold("t1"):
            events.append("second in")

    a = asyncio.create_task(first())
    await asyncio.sleep(0)
    b = asyncio.create_task(second())
    await asyncio.sleep(0.01)
    assert events == ["first in"] and locks.locked("t1")  # the second waits while the first holds
    release.set()
    await asyncio.gather(a, b)
    assert events == ["first in", "first out", "second in"]


async def test_other_keys_do_not_wait() -> None:
    locks: KeyedLock[int] = KeyedLock()
    async with locks.hold(1):
        async with asyncio.timeout(1):
            async with locks.hold(2):
                assert locks.locked(1) and locks.locked(2) and len(locks) == 2


async def test_an_entry_lives_only_while_held_or_awaited() -> None:
    locks: KeyedLock[str] = KeyedLock()
    gates = [asyncio.Event(), asyncio.Event()]
    inside: list[int] = []

    async def body(n: int) -> None:
        async with locks.hold("k"):
            inside.append(n)
            if n < len(gates):
                await gates[n].wait()
            inside.remove(n)

    first = asyncio.create_task(body(0))
    await asyncio.sleep(0)
    second = asyncio.create_task(body(1))
    await asyncio.sleep(0)
    assert len(locks) == 1
    gates[0].set()
    await first
    await asyncio.sleep(0)
    # The first left while the second waited: the entry stayed, so a third arrival queues behind the second
    # instead of getting a fresh lock of its own.
    third = asyncio.create_task(body(2))
    await asyncio.sleep(0.01)
    assert inside == [1] and len(locks) == 1
    gates[1].set()
    await asyncio.gather(second, third)
    assert len(locks) == 0 and not locks.locked("k")
    for key in map(str, range(100)):  # many keys used once leave nothing behind
        async with locks.hold(key):
            pass
    assert len(locks) == 0


async def test_a_body_that_raises_releases_and_prunes() -> None:
    locks: KeyedLock[str] = KeyedLock()
    with pytest.raises(RuntimeError):
        async with locks.hold("k"):
            raise RuntimeError("boom")
    assert len(locks) == 0
    async with asyncio.timeout(1), locks.hold("k"):
        assert locks.locked("k")


async def test_a_waiter_cancelled_before_its_turn_leaks_nothing() -> None:
    locks: KeyedLock[str] = KeyedLock()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("k"):
            raise AssertionError("a cancelled waiter never runs its body")

    a = asyncio.create_task(holder())
    await asyncio.sleep(0)
    b = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b
    assert len(locks) == 1  # only the holder's entry, no count left by the cancelled waiter
    release.set()
    await a
    assert len(locks) == 0
    async with asyncio.timeout(1), locks.hold("k"):  # the key is free for the next one
        pass
