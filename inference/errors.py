"""Typed model errors: `str(exc)` is safe to show a user; `detail` is for the log (never holds the API key)."""

from __future__ import annotations

# Raw model output kept on InvalidModelOutput: enough to debug, bounded so logs and records stay small.
RAW_OUTPUT_LIMIT = 2000


class InferenceError(Exception):
    """Base of every model client error; the message is user-safe."""

    def __init__(self, message: str, *, detail: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.user_message = message
        self.detail = detail
        self.status_code = status_code


class ModelUnavailable(InferenceError):
    """The model server cannot be reached or failed (connection refused, DNS, dropped connection, 5xx, 429)."""


class ModelTimeout(InferenceError):
    """The model server did not answer within the task's timeout."""


class ModelConfigError(InferenceError):
    """The endpoint is misconfigured: none set, API key rejected, unknown model name, request refused (4xx)."""


class InvalidModelOutput(InferenceError):
    """The model answered, but not with what was asked: invalid JSON, schema violation, unusable tool call."""

    def __init__(self, message: str, *, raw: str, detail: str = "") -> None:
        super().__init__(message, detail=detail)
        self.raw = truncate(raw)


def truncate(text: str, limit: int = RAW_OUTPUT_LIMIT) -> str:
    """`text` cut to `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"
