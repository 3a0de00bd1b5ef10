"""Logging: configured once, human or JSON, and no registered secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bastion.logs import REDACTED, configure_logging

TOKEN = "7412345678:AAH-telegram-bot-token-abcdefghijk"
API_SECRET = "bybit-api-secret-0123456789abcdef"


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def test_secret_never_appears_in_any_form(stream: io.StringIO) -> None:
    redactor = configure_logging("DEBUG", "human", [TOKEN], stream=stream)
    redactor.register(API_SECRET)
    log = logging.getLogger("bastion.test")
    log.info("starting bot with token %s", TOKEN)
    log.warning(f"url https://api.telegram.org/bot{TOKEN}/getMe failed")
    log.debug("params %r", {"apiKey": "x", "secret": API_SECRET})
    try:
        raise RuntimeError(f"auth failed for secret={API_SECRET}")
    except RuntimeError:
        log.exception("exchange call failed")
    out = stream.getvalue()
    assert TOKEN not in out and API_SECRET not in out
    assert out.count(REDACTED) == 4
    assert "Traceback" in out and "exchange call failed" in out


def test_json_format_is_one_object_per_line_and_redacted(stream: io.StringIO) -> None:
    configure_logging("INFO", "json", [API_SECRET], stream=stream)
    logging.getLogger("bastion.test").info("key=%s", API_SECRET)
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "bastion.test"
    assert API_SECRET not in line and REDACTED in entry["message"]


def test_configuring_twice_keeps_one_handler(stream: io.StringIO) -> None:
    configure_logging("INFO", "human", [], stream=io.StringIO())
    configure_logging("INFO", "human", [], stream=stream)
    logging.getLogger("bastion.test").info("once")
    assert stream.getvalue().count("once") == 1
    assert sum(h.get_name() == "bastion" for h in logging.getLogger().handlers) == 1


def test_short_values_are_not_treated_as_secrets(stream: io.StringIO) -> None:
    configure_logging("INFO", "human", ["abc", ""], stream=stream)
    logging.getLogger("bastion.test").info("abc is fine")
    assert "abc is fine" in stream.getvalue()
