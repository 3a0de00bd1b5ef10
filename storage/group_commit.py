"""Group commit: concurrent writes of one kind coalesce into one transaction, and each caller awaits its own result.

The first write starts a flush at once; writes that arrive while it runs wait for the next one, so a quiet
process pays no latency and a busy one pays one transaction (one BEGIN … COMMIT, one pooled connection) per
batch instead of per write. A caller's result is set only after its batch committed: durability is unchanged.
A batch that fails fails every caller in it, and none of its writes took effect (it was one transaction).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
Item = TypeVar("Item")
Result = TypeVar("Result")


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` is a dropped database connection (SQLAlchemy has invalidated the pool's older connections)."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class GroupCommit(Generic[Item, Result]):
    """Runs `flush` on batches of the items submitted concurrently; `flush` returns one result per item, in order.

    A batch that met a dropped connection is flushed once more on a fresh one when `retry_disconnect` is set (only
    for writes whose repeat is harmless: a batch that failed at its COMMIT may have committed).
    """

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 500,
        retry_disconnect: bool = False,
    ) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self.retry_disconnect = retry_disconnect
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = self.items = 0  # counters, for tests and benchmarks

    async def submit(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; returns its result once its batch has committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._run())
        # Shielded: a caller that stops waiting does not cancel the batch of the others.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                await self._flush_batch(batch)
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
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # cancellation of the flusher itself (loop shutdown)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
