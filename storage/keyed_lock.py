"""One asyncio lock per key (a conversation, an approval button, an account), kept only while it is in use.

The conversation locks, the approval presses and the executor's per-account serialisation all need "one at a time
per key, any number of keys side by side"; this is that idea once. An entry exists while somebody holds or waits
for its key and is removed by the last one out, so the table never grows with the keys ever seen. It sits in the
lowest layer (DESIGN §1) so every layer above can take one as a constructor argument.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holders and waiters: the entry goes when the last of them leaves


class KeyedLock(Generic[K]):
    """`async with locks.hold(key):` runs the bodies of one key one at a time; other keys do not wait."""

    def __init__(self) -> None:
        self._entries: dict[K, _Entry] = {}

    def __len__(self) -> int:
        """How many keys are held or waited for right now."""
        return len(self._entries)

    def locked(self, key: K) -> bool:
        """True while somebody holds `key`."""
        entry = self._entries.get(key)
        return entry is not None and entry.lock.locked()

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        """Hold `key` for the body; a waiter cancelled before its turn leaves no entry behind."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            # No await between the count and the removal: another task cannot slip in between on this loop.
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]
