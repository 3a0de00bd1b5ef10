"""An asyncio event loop whose clock skips the time nobody is working: sleeps that would idle are jumped over.

    loop = VirtualTimeLoop()
    loop.run_until_complete(main())  # asyncio.sleep(30) inside returns at once; loop.time() moved 30 s

Every sleeper is a timer of the one loop, so concurrent sleepers wake at their own deadlines on one clock (thirty
tasks sleeping 1 s together move the clock by 1 s, not 30). The clock is real monotonic time plus the idle time
skipped: work (CPU, database threads) takes the time it really takes. When the loop has no callback ready and its
next timer is in the future, it waits `grace_s` of real time for I/O or a thread's answer (aiosqlite answers through
the loop's self-pipe) and, when none comes, jumps the clock to that timer. A thread slower than the grace only lets
virtual time run on while it works, as real time would: rates measured on this clock are never flattered.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class _SkippingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The default selector, except that a wait with nothing to wake it advances the loop's clock instead."""

    def __init__(self, grace_s: float) -> None:
        super().__init__()
        self.grace_s = grace_s
        self.skipped = 0.0
        self.jumps = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= self.grace_s:
            return super().select(timeout)
        started = time.monotonic()
        events = super().select(self.grace_s)
        if not events:
            self.skipped += max(0.0, timeout - (time.monotonic() - started))
            self.jumps += 1
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a clock that skips idle waits; `wall()` is the same clock as a UTC datetime."""

    def __init__(self, grace_s: float = 0.001) -> None:
        self._skipping = _SkippingSelector(grace_s)
        super().__init__(selector=self._skipping)
        self._origin = self.time()

    def time(self) -> float:
        """Real monotonic seconds plus every idle wait skipped so far."""
        return time.monotonic() + self._skipping.skipped

    def wall(self) -> datetime:
        """The loop's clock as an aware datetime (starting near T0)."""
        return T0 + timedelta(seconds=self.time() - self._origin)

    @property
    def skipped_s(self) -> float:
        """Idle seconds jumped over."""
        return self._skipping.skipped

    @property
    def jumps(self) -> int:
        """How many idle waits were jumped over."""
        return self._skipping.jumps


def run(main: Any, grace_s: float = 0.001) -> Any:
    """asyncio.run on a fresh VirtualTimeLoop."""
    loop = VirtualTimeLoop(grace_s)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        asyncio.set_event_loop(None)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
