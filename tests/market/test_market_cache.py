"""The TTL cache with request coalescing."""

from __future__ import annotations

import asyncio

import pytest

from tools.market.cache import CoalescingCache


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Loader:
    """Counts calls; each takes a little while so concurrent callers overlap."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls = 0
        self.fail_times = fail_times

    async def __call__(self) -> int:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.calls <= self.fail_times:
            raise RuntimeError(f"boom {self.calls}")
        return self.calls


async def test_ttl_expiry() -> None:
    clock, load = Clock(), Loader()
    cache = CoalescingCache(clock=clock)
    assert await cache.get("k", 0.5, load) == 1
    clock.t = 0.5
    assert await cache.get("k", 0.5, load) == 1
    clock.t = 0.51
    assert await cache.get("k", 0.5, load) == 2
    assert cache.stats.hits == 1 and cache.stats.loads == 2


async def test_concurrent_misses_share_one_load() -> None:
    cache, load = CoalescingCache(), Loader()
    results = await asyncio.gather(*(cache.get("k", 1.0, load) for _ in range(500)))
    assert results == [1] * 500
    assert load.calls == 1 and cache.stats.coalesced == 499


async def test_errors_reach_every_waiter_and_are_not_cached() -> None:
    cache, load = CoalescingCache(), Loader(fail_times=1)
    results = await asyncio.gather(*(cache.get("k", 10.0, load) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results) and load.calls == 1
    assert await cache.get("k", 10.0, load) == 2


async def test_cancelled_first_caller_does_not_cancel_the_shared_load() -> None:
    cache, load = CoalescingCache(), Loader()
    first = asyncio.create_task(cache.get("k", 10.0, load))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get("k", 10.0, load))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 1
    with pytest.raises(asyncio.CancelledError):
        await first
    assert load.calls == 1 and cache.peek("k") == 1


async def test_no_ttl_entries_live_until_evicted_by_size() -> None:
    clock = Clock()
    cache = CoalescingCache(max_entries=2, clock=clock)
    for key in ("a", "b"):
        await cache.get(key, None, Loader())
    clock.t = 1e9
    assert cache.peek("a") == 1
    await cache.get("a", None, Loader())  # touch: "b" is now the least recently used
    await cache.get("c", None, Loader())
    assert len(cache) == 2 and cache.peek("b") is None and cache.peek("a") == 1


async def test_different_keys_load_separately() -> None:
    cache = CoalescingCache()
    loads = {k: Loader() for k in "abc"}
    await asyncio.gather(*(cache.get(k, 1.0, loads[k]) for k in "abcabc"))
    assert [loads[k].calls for k in "abc"] == [1, 1, 1]
