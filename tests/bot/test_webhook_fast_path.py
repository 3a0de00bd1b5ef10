"""The Telegram webhook answered straight from ASGI (`BastionAPI`) gives the answers FastAPI's route gives."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest

from bot.api.app import SECRET_HEADER, TELEGRAM_PATH, create_app

SECRET = "s3cret-token"
UPDATE = {"update_id": 7, "message": {"message_id": 1, "text": "/price btc", "date": 0, "chat": {"id": 1}}}


class Sink:
    """Records what reaches the channel; raises for update_id 666."""

    def __init__(self) -> None:
        self.fed: list[dict[str, Any]] = []

    async def feed(self, data: dict[str, Any]) -> object:
        if data["update_id"] == 666:
            raise RuntimeError("database gone")
        self.fed.append(data)
        return None


async def _ok() -> bool:
    return True


class Counted:
    """An ASGI middleware inside FastAPI's stack: counts the requests that went through it."""

    seen: ClassVar[list[str]] = []

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            Counted.seen.append(scope["path"])
        await self.app(scope, receive, send)


def _app(sink: Sink, fast: bool) -> Any:
    app = create_app(database_ok=_ok, telegram=sink, telegram_secret=SECRET, max_body_bytes=4096, max_json_depth=8)
    app.add_middleware(Counted)
    if not fast:
        app.webhook = None  # every request through FastAPI's route, as when the app is reached another way
    return app


async def _chunks(body: bytes) -> AsyncIterator[bytes]:  # no Content-Length: the limit counts what arrives
    for i in range(0, len(body), 1000):
        yield body[i : i + 1000]


REQUESTS: list[tuple[str, dict[str, str], Any]] = [
    ("accepted", {SECRET_HEADER: SECRET}, json.dumps(UPDATE).encode()),
    ("no secret", {}, json.dumps(UPDATE).encode()),
    ("wrong secret", {SECRET_HEADER: "guess"}, json.dumps(UPDATE).encode()),
    ("not JSON", {SECRET_HEADER: SECRET}, b"{nope"),
    ("no update_id", {SECRET_HEADER: SECRET}, b'{"message": {}}'),
    ("a list", {SECRET_HEADER: SECRET}, b"[1, 2]"),
    ("too deep", {SECRET_HEADER: SECRET}, b'{"update_id": 8, "x": ' + b"[" * 20 + b"]" * 20 + b"}"),
    ("too big", {SECRET_HEADER: SECRET}, json.dumps({**UPDATE, "pad": "x" * 5000}).encode()),
    ("too big, chunked", {SECRET_HEADER: SECRET}, "chunked"),
]


async def _answers(fast: bool) -> tuple[list[tuple[str, int, Any]], Sink, str]:
    sink = Sink()
    Counted.seen = []
    app = _app(sink, fast)
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        for name, headers, body in REQUESTS:
            content = _chunks(json.dumps({**UPDATE, "pad": "x" * 5000}).encode()) if body == "chunked" else body
            r = await client.post(TELEGRAM_PATH, content=content, headers=headers)
            assert r.headers["content-type"] == "application/json", name
            answers.append((name, r.status_code, r.json()))
        through_fastapi = Counted.seen.count(TELEGRAM_PATH)
        assert through_fastapi == (0 if fast else len(REQUESTS))
        metrics = (await client.get("/metrics")).text
    return answers, sink, metrics


async def test_the_fast_path_answers_every_request_as_the_route_does() -> None:
    fast, fast_sink, fast_metrics = await _answers(fast=True)
    slow, slow_sink, slow_metrics = await _answers(fast=False)
    assert fast == slow
    assert [status for _, status, _ in fast] == [200, 403, 403, 400, 400, 400, 400, 413, 413]
    assert fast[0][2] == {"ok": True} and fast[1][2] == {"detail": "bad secret token"}
    assert fast_sink.fed == slow_sink.fed == [UPDATE]  # nothing refused reached the channel

    def counts(metrics: str) -> list[str]:
        return sorted(line for line in metrics.splitlines() if line.startswith("bastion_webhook_rejected_total"))

    assert counts(fast_metrics) == counts(slow_metrics) != []


async def test_a_repeated_secret_header_is_read_as_fastapi_reads_it() -> None:
    for fast in (True, False):
        sink = Sink()
        app = _app(sink, fast)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            first_wrong = [(SECRET_HEADER, "guess"), (SECRET_HEADER, SECRET)]
            first_right = [(SECRET_HEADER, SECRET), (SECRET_HEADER, "guess")]
            wrong = await client.post(TELEGRAM_PATH, json=UPDATE, headers=httpx.Headers(first_wrong))
            right = await client.post(TELEGRAM_PATH, json=UPDATE, headers=httpx.Headers(first_right))
        assert (wrong.status_code, right.status_code) == (403, 200), fast
        assert sink.fed == [UPDATE]


async def test_a_failing_update_answers_500_so_that_telegram_sends_it_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    app = _app(Sink(), fast=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        r = await client.post(TELEGRAM_PATH, json={"update_id": 666}, headers={SECRET_HEADER: SECRET})
    assert r.status_code == 500
    assert r.json() == {"detail": "Internal Server Error"}  # no traceback in the answer
    assert any("webhook update failed" in rec.getMessage() for rec in caplog.records)


async def test_other_methods_and_paths_still_go_through_fastapi() -> None:
    app = _app(Sink(), fast=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        assert (await client.get(TELEGRAM_PATH)).status_code == 405
        assert (await client.get("/health")).json()["status"] == "ok"
    assert TELEGRAM_PATH in app.openapi()["paths"]  # still documented
