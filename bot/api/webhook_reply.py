"""A reply answered in the webhook response body: one Bot API call instead of a request of the bot's own.

Telegram executes one method given as the body of a webhook's 200 answer, but never says whether it worked and
gives no result (no message id). So only a message that is the whole, final reply of an update goes that way:
the channel's replier *holds* an eligible message (text only, no buttons, one message long) instead of sending
it; whatever comes next in the same turn (another message, an edit of the held one) first sends the held message
the normal way. When the turn ends in time, the inbox takes the held call, stores it with the update's mark
(a retry of the update after a lost answer gets the same call again, never a second handling) and the request
answers with it. When the request's budget ends first, the held message is sent the normal way and the request
answers empty.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)
Send = Callable[[], Coroutine[Any, Any, str | None]]


class ReplySlot:
    """What one webhook request may still answer with; shared by the request, the handling and the replier."""

    def __init__(self) -> None:
        self.open = True  # the request still waits and nothing was sent around it yet
        self.body: dict[str, Any] | None = None
        self._send: Send | None = None
        self._sending: asyncio.Task[str | None] | None = None
        # The request's answer: the call stored with the mark, or None (answer empty); set once the mark is known.
        self.answer: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()

    def hold(self, body: dict[str, Any], send: Send) -> bool:
        """Keep `body` for the response instead of sending it now (`send` sends it the normal way); False when the
        request cannot answer with it any more (closed, or it already holds one)."""
        if not self.open or self.body is not None:
            return False
        self.body, self._send = body, send
        return True

    def release(self) -> Awaitable[str | None] | None:
        """Send the held message the normal way now (once); what it awaits gives its ref. None when none is held."""
        self.open = False
        if self._send is None:
            return None
        if self._sending is None:
            self._sending = asyncio.create_task(self._send())
            self._sending.add_done_callback(_log_failure)  # nobody may await it when the budget ended
        return self._sending

    def close(self) -> bool:
        """The request's budget ended: a held message goes the normal way; False when the handling already took it
        (the request then waits for its mark)."""
        if self.answer.done() or (not self.open and self.body is not None and self._sending is None):
            return False
        self.release()
        return True

    def take(self) -> dict[str, Any] | None:
        """The turn ended: the held call, when the request can still answer with it (it is then the final reply)."""
        if not self.open or self.body is None or self._sending is not None:
            self.open = False
            return None
        self.open = False
        return self.body

    def resolve(self, answer: dict[str, Any] | None) -> None:
        """Tell the request what to answer (after the mark committed); a call answered in the body is never sent
        the normal way too."""
        if answer is not None:
            self._send = None
        if not self.answer.done():
            self.answer.set_result(answer)


def _log_failure(task: asyncio.Task[str | None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a held webhook reply could not be sent", exc_info=task.exception())


# The slot of the webhook request whose update is being handled in this task (None outside one).
CURRENT_SLOT: contextvars.ContextVar[ReplySlot | None] = contextvars.ContextVar("webhook_reply_slot", default=None)
