"""Group commit: concurrent writes of one kind coalesce into one transaction, and each caller awaits its own result.

The first write starts a flush at once; writes that arrive while it runs wait for the next one, so a quiet
process pays no latency and a busy one pays one transaction (one BEGIN … COMMIT, one pooled connection) per
batch instead of per write. A caller's result is set only after its batch committed: durability is unchanged.
A batch that fails fails every caller in it, and none of its writes took effect (it was one transaction).
With a `key`, concurrent submissions of one key (queued or in a batch now) share one item and one result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` is a dropped database connection (SQLAlchemy has invalidated the pool's older connections)."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _consume(future: asyncio.Future[Any]) -> None:
    # A result whose every caller stopped waiting still fails or succeeds; nobody is left to read its error.
    if not future.cancelled():
        future.exception()


class GroupCommit(Generic[Item, Result]):
    """Runs `flush` on batches of the items submitted concurrently; `flush` returns one result per item, in order.

    A batch that met a dropped connection is flushed once more on a fresh one when `retry_disconnect` is set (only
    for writes whose repeat is harmless: a batch that failed at its COMMIT may have committed). With `key`, an item
    whose key is already queued or in a batch is not flushed again: its caller shares the earlier one's result.
    """

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 500,
        retry_disconnect: bool = False,
        key: Callable[[Item], Hashable] | None = None,
    ) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self.retry_disconnect = retry_disconnect
        self._key = key
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._shared: dict[Hashable, asyncio.Future[Result]] = {}  # key → its result, while queued or in a batch
        self._flusher: asyncio.Task[None] | None = None
        self.batches = self.items = 0  # counters, for tests and benchmarks

    async def submit(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; returns its result once its batch has committed."""
        loop = asyncio.get_running_loop()
        future = self._future_for(item, loop)
        # Shielded: a caller that stops waiting does not cancel the batch of the others.
        return await asyncio.shield(future)

    def _future_for(self, item: Item, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Result]:
        key = None if self._key is None else self._key(item)
        if key is not None:
            shared = self._shared.get(key)
            if shared is not None and shared.get_loop() is loop:
                return shared
        future: asyncio.Future[Result] = loop.create_future()
        future.add_done_callback(_consume)
        if key is not None:
            self._shared[key] = future
        self._pending.append((item, future))
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            # None running, or one stranded on an event loop that has gone (its callers went with it).
            self._pending = [(i, f) for i, f in self._pending if f.get_loop() is loop]
            self._shared = {k: f for k, f in self._shared.items() if f.get_loop() is loop}
            self._flusher = loop.create_task(self._run())
        return future

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                await self._flush_batch(batch)
        except BaseException as exc:  # the flusher itself was stopped (loop shutdown): nobody left waits in vain
            batch, self._pending = self._pending, []
            if not isinstance(exc, GeneratorExit):  # a coroutine of a closed loop, collected: its loop is gone
                self._settle(batch, exc)
            raise
        finally:
            self._flusher = None  # no await since the loop's last check: nothing submitted meanwhile is stranded

    async def _flush_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        self.batches += 1
        self.items += len(items)
        try:
            try:
                results = await self._flush(items)
            except DBAPIError as exc:
                if not (self.retry_disconnect and is_disconnect(exc)):
                    raise
                log.warning("database connection dropped; writing the batch of %d again", len(items))
                results = await self._flush(items)
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                self._settle(batch, exc)
            if not isinstance(exc, Exception):
                raise  # cancellation of the flusher itself (loop shutdown)
            return
        results = list(results)
        if len(results) != len(batch):
            self._settle(batch, RuntimeError(f"flush returned {len(results)} results for {len(batch)} items"))
            return
        self._settle(batch, results)

    def _settle(self, batch: list[tuple[Item, asyncio.Future[Result]]], outcome: list[Result] | BaseException) -> None:
        """Each future of `batch` gets its result (or the batch's error); a shared key is free again first."""
        for n, (item, future) in enumerate(batch):
            if self._key is not None:
                key = self._key(item)
                if self._shared.get(key) is future:
                    del self._shared[key]
            if future.done():
                continue
            if isinstance(outcome, list):
                future.set_result(outcome[n])
            elif isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.cancel()  # the flusher itself was cancelled or the process is stopping
