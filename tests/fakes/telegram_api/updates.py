"""getUpdates: the queue of pending updates, long polls, offsets and allowed_updates."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from typing import Any

from tests.fakes.telegram_api.protocol import DEFAULT_DESCRIPTIONS, ApiError, Handler
from tests.fakes.telegram_api.state import TelegramState
from tests.fakes.telegram_api.wire import int_param, number_param

_UPDATE_TYPES_OFF_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class UpdateQueue(TelegramState):
    """Updates waiting for getUpdates; a new long poll ends the one before it with 409, as Telegram does."""

    def _update_methods(self) -> dict[str, Handler]:
        return {"getupdates": self._get_updates}

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued for getUpdates and not yet confirmed by an offset."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def _wake_pollers(self) -> None:
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None:
            with contextlib.suppress(RuntimeError):  # the server loop closed meanwhile
                loop.call_soon_threadsafe(changed.set)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        limit = min(max(int_param(params.get("limit", 100), "limit"), 1), 100)
        timeout = max(number_param(params.get("timeout", 0), "timeout"), 0.0)
        offset = params.get("offset")
        allowed = params.get("allowed_updates")
        with self._lock:
            if self.webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if allowed is not None:
                self._allowed_updates = list(allowed) or None
            if offset is not None:
                self._confirm(int_param(offset, "offset"))
            self._poll_generation += 1
            generation = self._poll_generation
        assert self._changed is not None
        self._changed.set()  # an older poll still waiting is terminated by this one
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            with self._lock:
                if self._stopping:
                    return []
                if generation != self._poll_generation:
                    raise ApiError(409, DEFAULT_DESCRIPTIONS[409])
                if self.webhook is not None:
                    raise ApiError(409, "Conflict: terminated by setWebhook request")
                self._updates = [u for u in self._updates if is_allowed(u, self._allowed_updates)]
                ready = copy.deepcopy(self._updates[:limit])
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                return ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._updates = self._updates[offset:]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]


def update_type(update: dict[str, Any]) -> str:
    """The kind of an Update ("message", "callback_query", ...)."""
    return next((k for k in update if k != "update_id"), "")


def is_allowed(update: dict[str, Any], allowed: list[str] | None) -> bool:
    """Whether allowed_updates lets the update through (None: every kind but those Telegram sends only on request)."""
    kind = update_type(update)
    if allowed is None:
        return kind not in _UPDATE_TYPES_OFF_BY_DEFAULT
    return kind in allowed
