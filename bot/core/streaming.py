"""Streams an answer into one message by editing it as tokens arrive, at most one edit per interval."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from bot.core.messages import Outbound, Replier

CURSOR = " …"


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
        self._tokens: list[str] = []
        self._shown = ""
        self._last_write = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # the pump is never cancelled in the middle of a send or edit

    def on_token(self, token: str) -> None:
        """Add a token (called synchronously from the agent's stream); starts the pump on the first one."""
        self._tokens.append(token)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    @property
    def text(self) -> str:
        """Everything streamed so far."""
        return "".join(self._tokens)

    async def _pump(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._last_write + self.interval_s - self.clock()))
            preview = self.text[: self.preview_chars]
            if preview.strip() and preview != self._shown:
                async with self._writing:
                    await self._write(Outbound(preview + CURSOR))
                self._shown = preview
            else:
                await asyncio.sleep(self.interval_s / 4)

    async def _write(self, out: Outbound) -> None:
        self._last_write = self.clock()
        if self.message_ref is None:
            self.message_ref = await self.replier.send(out)
        else:
            await self.replier.edit(self.message_ref, out)
            self.edits += 1

    async def finish(self, out: Outbound) -> str | None:
        """Show the final answer (edit of the streamed message, or a new one); returns its message ref."""
        if self._task is not None:
            async with self._writing:  # a first send still in flight completes, so the answer is never posted twice
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.message_ref is None:
            return await self.replier.send(out)
        # Keep the one-edit-per-interval promise for the final edit too.
        await asyncio.sleep(max(0.0, self._last_write + self.interval_s - self.clock()))
        await self._write(Outbound(out.text, out.buttons))
        if out.photo is not None:
            await self.replier.send(Outbound(photo=out.photo))
        return self.message_ref
