"""Faults the test injects: error answers for the next calls of a method, chats that blocked the bot."""

from __future__ import annotations

from tests.fakes.telegram_api.protocol import DEFAULT_DESCRIPTIONS, ApiError, Fault
from tests.fakes.telegram_api.state import TelegramState


class Faults(TelegramState):
    """Injected faults, and the lookup the server makes before it runs a method."""

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next `count` calls of `method` with an error (by default 429 with parameters.retry_after)."""
        if description is None:
            if status == 429:
                description = "Too Many Requests" + (f": retry after {retry_after}" if retry_after is not None else "")
            else:
                description = DEFAULT_DESCRIPTIONS.get(status, f"Error: fake failure {status}")
        with self._lock:
            self._faults.append(
                Fault(method.lower(), status, description, retry_after if status == 429 else None, count)
            )

    def block_chat(self, chat_id: int) -> None:
        """Every later send, edit, delete or chat action to that chat answers 403 Forbidden."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """Undo block_chat."""
        with self._lock:
            self._blocked.discard(chat_id)

    def _take_fault(self, method: str) -> ApiError | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method.lower() and fault.left > 0:
                    fault.left -= 1
                    if fault.left == 0:
                        self._faults.remove(fault)
                    return ApiError(fault.status, fault.description, fault.retry_after)
        return None
