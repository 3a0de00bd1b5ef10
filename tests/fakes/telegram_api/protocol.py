"""What the fake Bot API records and answers: API calls, the messages the bot sent, typed API errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: fake failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass(slots=True)
class ApiCall:
    """One Bot API request as the server received it; `status` is the HTTP status it was answered with."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() on arrival
    status: int = 0  # 0 while a long poll is still waiting


@dataclass(slots=True)
class SentMessage:
    """A message the bot sent (sendMessage or sendPhoto), as it stands now.

    `text` and `caption` are what the bot sent (markup included, before entity parsing); `plain` is the text or
    caption as Telegram shows it (tags and escapes removed). `edits` lists the new text (or caption) of every
    successful edit, in order, so `edits[-1] == text` once the message was edited.
    """

    chat_id: int
    message_id: int
    text: str | None
    caption: str | None
    photo_size: int | None
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    edits: list[str]
    deleted: bool
    at: float
    plain: str | None = None
    reply_to_message_id: int | None = None
    photo_bytes: bytes | None = None


class ApiError(Exception):
    """An error answer: HTTP status, Telegram's description, and retry_after for 429."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def bad(description: str) -> ApiError:
    """A 400 Bad Request with Telegram's description."""
    return ApiError(400, f"Bad Request: {description}")


@dataclass(slots=True)
class Fault:
    """An injected error answer for the next `left` calls of a method."""

    method: str
    status: int
    description: str
    retry_after: int | None
    left: int


@dataclass(slots=True)
class Upload:
    """A file of a multipart request."""

    name: str
    filename: str
    data: bytes


# A Bot API method: (params, uploaded files, arrival time) -> the result; getUpdates is async and takes params only.
Handler = Callable[..., Any]


def snapshot(record: SentMessage) -> SentMessage:
    """A copy of a sent message that later edits do not change."""
    return replace(record, edits=list(record.edits), reply_markup=copy.deepcopy(record.reply_markup))
