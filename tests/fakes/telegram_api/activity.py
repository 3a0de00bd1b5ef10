"""What the bot did, as the test reads it: sent messages, callback answers, rates, and waiting for a condition."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram_api.protocol import SentMessage, snapshot
from tests.fakes.telegram_api.state import TelegramState


class BotActivity(TelegramState):
    """Thread-safe snapshots of the bot's activity, and `wait_for`, woken by the fake's own events."""

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Snapshots of the messages the bot sent, in order (deleted ones included, marked), optionally one chat's."""
        with self._lock:
            return [snapshot(m) for m in self._sent if chat_id is None or m.chat_id == chat_id]

    def cpu_s(self) -> float:
        """CPU seconds the fake's server thread used so far (benchmarks subtract it from the process's)."""
        thread = self._thread
        if thread is None or thread.ident is None:
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))

    def sent_count(self, chat_id: int | None = None) -> int:
        """How many messages the bot sent, overall or to one chat (constant time: no snapshots)."""
        with self._lock:
            return len(self._sent) if chat_id is None else self._sent_per_chat.get(chat_id, 0)

    def message(self, chat_id: int, message_id: int) -> SentMessage | None:
        """Snapshot of one message the bot sent, or None."""
        with self._lock:
            found = self._sent_by_key.get((chat_id, message_id))
            return snapshot(found) if found is not None else None

    def callback_answers(self) -> list[dict[str, Any]]:
        """Parameters of the successful answerCallbackQuery calls, in order."""
        with self._lock:
            return [dict(a) for a in self._callback_answers]

    def max_rate(self, window: float = 1.0, chat_id: int | None = None) -> int:
        """The most messages the bot sent (successfully) within any `window` seconds, overall or to one chat."""
        times = sorted(m.at for m in self.sent(chat_id))
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        recheck_s: float | None = 0.01,
        chat_id: int | None = None,
    ) -> None:
        """Wait until `predicate` holds, looking again whenever the fake answers a call (with `chat_id`, a call
        about that chat only) or delivers a webhook update, and every `recheck_s` for predicates on state outside
        the fake (None: on the fake's events only). AssertionError describing the bot's activity on timeout."""
        deadline = time.monotonic() + timeout
        changed = asyncio.Event()
        waiter = (asyncio.get_running_loop(), changed, chat_id)
        with self._lock:
            self._waiters.append(waiter)
        try:
            while True:
                changed.clear()  # before the look: a change right after it sets the event again
                if predicate():
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{_describe(predicate)} not met within {timeout} s; {self._activity()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), left if recheck_s is None else min(left, recheck_s))
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def _activity(self) -> str:
        calls = [f"{c.method}→{c.status or 'waiting'}" for c in list(self.calls)[-12:]]
        texts = [f"{m.chat_id}/{m.message_id}: {(m.text or m.caption or '<photo>')[:60]!r}" for m in self.sent()[-5:]]
        return f"last API calls: {calls}; last sent messages: {texts}"


def _describe(predicate: Callable[[], bool]) -> str:
    code = getattr(predicate, "__code__", None)
    name = getattr(predicate, "__qualname__", repr(predicate))
    if code is not None:
        return f"condition {name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
    return f"condition {name}"
