"""Streams an answer into one message by editing it as tokens arrive, at most one edit per interval.

The preview is best effort, the final answer is not: a failed preview edit is skipped (the next one carries newer
text), a failed final edit is tried once more and then the answer goes out as a new message. The pump lives only
as long as its turn: `close()` (or leaving `async with`) stops it, and so does the end of the task that made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType

from bot.core.messages import Outbound, Replier
from storage.retry import RetryPolicy, retry_async

log = logging.getLogger(__name__)
CURSOR = " …"
# The final edit is tried twice, half a second apart: an edit to the same text is a no-op success, so it is safe.
FINAL_EDIT_RETRY = RetryPolicy(attempts=2, base_delay_s=0.5, max_delay_s=0.5)
CLOSE_WAIT_S = 5.0  # how long close() lets a send in flight finish before cancelling it


class StreamedAnswer:
    """Collects tokens; a pump sends the first message and edits it at most once per `interval_s`."""

    def __init__(
        self,
        replier: Replier,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        preview_chars: int = 3500,
    ) -> None:
        self.replier = replier
        self.interval_s = interval_s
        self.clock = clock
        self.preview_chars = preview_chars
        self.message_ref: str | None = None
        self.edits = 0
        self.failed_writes = 0
        self._tokens: list[str] = []
        self._shown = ""
        self._last_write = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._previews = True  # off after a failed first send: a retry could post the preview twice
        self._closed = False
        self._writing = asyncio.Lock()  # the pump is never cancelled in the middle of a send or edit
        # The turn's task ending (normally, by an error, or cancelled) ends the pump with it.
        self._owner = asyncio.current_task()
        if self._owner is not None:
            self._owner.add_done_callback(self._on_owner_done)

    async def __aenter__(self) -> StreamedAnswer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def on_token(self, token: str) -> None:
        """Add a token (called synchronously from the agent's stream); starts the pump on the first one."""
        self._tokens.append(token)
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    @property
    def text(self) -> str:
        """Everything streamed so far."""
        return "".join(self._tokens)

    @property
    def running(self) -> bool:
        """True while the pump task exists and has not finished."""
        return self._task is not None and not self._task.done()

    async def _pump(self) -> None:
        while self._previews:
            await asyncio.sleep(max(0.0, self._last_write + self.interval_s - self.clock()))
            preview = self.text[: self.preview_chars]
            if preview.strip() and preview != self._shown:
                async with self._writing:
                    await self._preview(Outbound(preview + CURSOR))
                self._shown = preview
            else:
                await asyncio.sleep(self.interval_s / 4)

    async def _preview(self, out: Outbound) -> None:
        try:
            await self._write(out)
        except Exception:
            # A preview is best effort; the final answer is delivered by finish() whatever happens here.
            self.failed_writes += 1
            if self.message_ref is None:
                self._previews = False
            log.warning("a streamed preview could not be shown; skipping it", exc_info=True)

    async def _write(self, out: Outbound) -> None:
        self._last_write = self.clock()
        if self.message_ref is None:
            self.message_ref = await self.replier.send(out)
        else:
            await self.replier.edit(self.message_ref, out)
            self.edits += 1

    def _on_owner_done(self, _: object) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _stop_pump(self, wait_s: float | None) -> None:
        """Stop the pump, letting a send or edit in flight complete first (within `wait_s` when given)."""
        self._closed = True
        if self._owner is not None:
            # A long-lived caller (the console loop) must not collect one callback per answer.
            self._owner.remove_done_callback(self._on_owner_done)
            self._owner = None
        if self._task is None:
            return
        try:
            async with asyncio.timeout(wait_s):
                async with self._writing:
                    self._task.cancel()
        except TimeoutError:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def close(self) -> None:
        """End the pump without a final answer (the turn failed); safe to call more than once."""
        await self._stop_pump(CLOSE_WAIT_S)

    async def finish(self, out: Outbound) -> str | None:
        """Show the final answer (edit of the streamed message, or a new one); returns its message ref."""
        # A first send still in flight completes, so the answer is never posted twice.
        await self._stop_pump(None)
        if self.message_ref is None:
            return await self.replier.send(out)
        # Keep the one-edit-per-interval promise for the final edit too.
        await asyncio.sleep(max(0.0, self._last_write + self.interval_s - self.clock()))
        ref = await self._final_edit(Outbound(out.text, out.buttons))
        if out.photo is not None:
            await self.replier.send(Outbound(photo=out.photo))
        return ref

    async def _final_edit(self, out: Outbound) -> str | None:
        tries = 0

        async def attempt() -> str | None:
            nonlocal tries
            tries += 1
            try:
                await self._write(out)
            except Exception:
                self.failed_writes += 1
                log.warning("final edit of a streamed answer failed (attempt %d)", tries, exc_info=True)
                raise
            return self.message_ref

        with contextlib.suppress(Exception):
            return await retry_async(attempt, FINAL_EDIT_RETRY, retry_on=lambda _exc: True)
        # The streamed message cannot take the answer (deleted, too old, the platform refuses): send it anew.
        self.message_ref = await self.replier.send(out)
        return self.message_ref
