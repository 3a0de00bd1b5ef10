"""HEAD on the health probes and /metrics documented as Prometheus text (issue 19 item 9)."""

from __future__ import annotations

from typing import Any

import httpx

from bot.api.app import create_app
from bot.api.ops import ops_router


async def _ok() -> bool:
    return True


def _app() -> Any:
    return create_app(database_ok=_ok, version="t", routers=[ops_router({}, "t")])


async def test_head_is_allowed_on_health_and_healthz_with_no_body() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://ops") as client:
        for path in ("/health", "/healthz"):
            head = await client.head(path)
            assert head.status_code == 200, path
            assert head.content == b""
            assert (await client.get(path)).json()["status"] == "ok"


def test_openapi_documents_head_and_metrics_as_text() -> None:
    paths = _app().openapi()["paths"]
    assert {"get", "head"} <= set(paths["/health"]) and {"get", "head"} <= set(paths["/healthz"])
    content = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]
    assert content["text/plain"]["schema"] == {"type": "string"}
