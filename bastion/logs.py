"""Logging, configured once: human or JSON lines, with every registered secret redacted from the output."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

REDACTED = "[REDACTED]"
# Very short values would redact innocent text ("1", "abc"); real credentials are far longer.
MIN_SECRET_LENGTH = 6


class Redactor:
    """The set of secret values that must never appear in log output."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: list[str] = []
        self.register(*secrets)

    def register(self, *values: str) -> None:
        """Add secret values (API keys, bot tokens, encryption keys) to redact from now on."""
        with self._lock:
            merged = set(self._secrets) | {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
            # Longest first so a secret containing another is replaced whole.
            self._secrets = sorted(merged, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` with every registered secret replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class RedactingFormatter(logging.Formatter):
    """Formats with an inner formatter, then redacts: covers the message, its args, extras and tracebacks."""

    def __init__(self, inner: logging.Formatter, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        """Redacted output of the inner formatter."""
        return self.redactor.redact(self.inner.format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


HUMAN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_HANDLER_NAME = "bastion"


def configure_logging(
    level: str = "INFO", fmt: str = "human", secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> Redactor:
    """Install the single root handler (replacing a previous one of ours) and return its redactor."""
    redactor = Redactor(secrets)
    inner: logging.Formatter = JsonFormatter() if fmt == "json" else logging.Formatter(HUMAN_FORMAT)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(RedactingFormatter(inner, redactor))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log request URLs or headers at DEBUG stay at WARNING unless asked for.
    for noisy in ("httpx", "httpcore", "ccxt", "asyncio", "aiosqlite", "sqlalchemy.engine", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    return redactor
