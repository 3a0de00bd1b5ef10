"""TTL cache with request coalescing: many concurrent requests for one key make one upstream call."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class CacheStats:
    """Counters for tests, benchmarks and metrics."""

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    loads: int = 0
    errors: int = 0


class CoalescingCache:
    """An LRU-bounded TTL cache whose misses share one in-flight load per key.

    `ttl=None` keeps an entry until it is evicted by size (immutable data such as closed candles).
    Failed loads are not cached: every waiter of that load gets the error, the next call retries.
    """

    def __init__(self, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._inflight: dict[Hashable, asyncio.Future[Any]] = {}
        self._max_entries = max_entries
        self._clock = clock
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: Hashable) -> Any | None:
        """The fresh cached value for `key`, or None (no load, no stats)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any, ttl: float | None) -> None:
        """Store `value` for `ttl` seconds (None = until evicted)."""
        expires = float("inf") if ttl is None else self._clock() + ttl
        self._entries[key] = (expires, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, key: Hashable | None = None) -> None:
        """Drop one key, or everything when `key` is None."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)

    async def get(self, key: Hashable, ttl: float | None, loader: Callable[[], Awaitable[T]]) -> T:
        """The cached value for `key`, else the result of one shared call to `loader`."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] >= self._clock():
            self.stats.hits += 1
            self._entries.move_to_end(key)
            return entry[1]
        pending = self._inflight.get(key)
        if pending is not None:
            self.stats.coalesced += 1
            # shield: one cancelled waiter must not cancel the load the others wait on.
            return await asyncio.shield(pending)
        self.stats.misses += 1
        # The load runs as its own task so a cancelled first caller does not cancel it for the others.
        task = asyncio.ensure_future(self._load(key, ttl, loader))
        task.add_done_callback(_consume_exception)
        self._inflight[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, ttl: float | None, loader: Callable[[], Awaitable[T]]) -> T:
        self.stats.loads += 1
        try:
            value = await loader()
        except BaseException:
            self.stats.errors += 1
            raise
        finally:
            self._inflight.pop(key, None)
        self.put(key, value, ttl)
        return value


def _consume_exception(task: asyncio.Future[Any]) -> None:
    # Every waiter may have gone away; retrieving the error keeps asyncio from logging it as lost.
    if not task.cancelled():
        task.exception()
