"""Fixtures for the tests of the fakes themselves: a started fake Bot API and a raw HTTP client of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.telegram_api import FakeTelegram


class BotApi:
    """Raw Bot API calls over HTTP (no PTB), so a test sees the exact answer the fake gives."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.client = httpx.Client(base_url=f"{fake.base_url}{fake.token}/", timeout=5)

    def ok(self, method: str, **params: Any) -> Any:
        """Call a method that must succeed; returns its result."""
        body = self.client.post(method, json=params).json()
        assert body["ok"] is True, body
        return body["result"]

    def error(self, method: str, **params: Any) -> tuple[int, str]:
        """Call a method that must fail; returns the error code and description."""
        response = self.client.post(method, json=params)
        body = response.json()
        assert body["ok"] is False and body["error_code"] == response.status_code, body
        return body["error_code"], body["description"]

    def __enter__(self) -> BotApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def _serve() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    yield from _serve()


@pytest.fixture
def api(tg: FakeTelegram) -> Iterator[BotApi]:
    with BotApi(tg) as client:
        yield client


# One server for a module's tests of refused calls, which change nothing (they assert so): a start costs ~0.2 s.
@pytest.fixture(scope="module")
def shared_tg() -> Iterator[FakeTelegram]:
    yield from _serve()


@pytest.fixture(scope="module")
def shared_api(shared_tg: FakeTelegram) -> Iterator[BotApi]:
    with BotApi(shared_tg) as client:
        yield client
