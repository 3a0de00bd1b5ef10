"""Operator API: /healthz, /readyz with each dependency, /metrics with the figures the core and delivery caused,
/docs without a CDN."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from bastion.app import Services
from bot.api.app import create_app, database_check
from bot.api.metrics import Metrics
from bot.api.ops import CheckResult, bool_check, leader_check, migrations_check, ops_router, outbox_depth
from bot.core.delivery import DeliveryWorker
from bot.core.dispatcher import BotCore
from bot.core.observed import CountingSender, observe
from storage.db import create_engine, session_factory
from storage.repositories import outbox as outbox_repo
from tests.bot.fakes import RecipientGone, RecordingSender, RetryAfter, VirtualClock
from tests.bot.telegram_harness import ALICE
from tests.bot.test_core import RecordingReplier, core_on, said  # noqa: F401  (core_on is a fixture)


async def _ok() -> bool:
    return True


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ops")


async def test_healthz_is_liveness_and_readyz_reports_each_dependency(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)  # not migrated yet: readiness must say so
    leading: list[bool | None] = [None]

    async def market() -> CheckResult:
        return CheckResult(ok=True, detail="BTC 64000 from simulated")

    async def slow_model() -> CheckResult:
        await asyncio.sleep(5)
        return CheckResult(ok=True, detail="never")

    checks = {
        "database": bool_check(database_check(engine), "reachable", "unreachable"),
        "migrations": migrations_check(engine),
        "scheduler": leader_check(lambda: leading[0]),
        "model": slow_model,
        "market_data": market,
    }
    # 2 s, not 0.3 s: the same bound covers the real database and migration checks, which a loaded machine can
    # keep past 0.3 s; the model still sleeps past it.
    app = create_app(database_ok=_ok, version="9.9", routers=[ops_router(checks, "9.9", timeout_s=2.0)])
    try:
        async with _client(app) as client:
            live = await client.get("/healthz")
            assert live.status_code == 200 and live.json() == {"status": "ok", "version": "9.9"}
            r = await client.get("/readyz")
            assert r.status_code == 503
            got = r.json()["checks"]
            assert got["database"] == {"ok": True, "detail": "reachable"}
            assert not got["migrations"]["ok"] and "run bastion migrate" in got["migrations"]["detail"]
            assert got["scheduler"] == {"ok": False, "detail": "leader election not started"}
            assert got["model"] == {"ok": False, "detail": "no answer within 2 s"}
            assert got["market_data"]["ok"]

        from storage import migrate

        await migrate.upgrade(engine)
        leading[0] = False
        checks["model"] = market
        # every check answers now; a generous bound keeps a loaded CI machine from turning a slow answer into a 503
        ready_app = create_app(database_ok=_ok, version="9.9", routers=[ops_router(checks, "9.9", timeout_s=30)])
        async with _client(ready_app) as client:
            r = await client.get("/readyz")
            assert r.status_code == 200 and r.json()["status"] == "ready"
            assert r.json()["checks"]["scheduler"]["detail"] == "standby"
            assert r.json()["checks"]["migrations"]["detail"].startswith("at head ")
            assert (await client.get("/health")).status_code == 200  # the older endpoint still answers
    finally:
        await engine.dispose()


async def test_a_crashing_check_is_reported_not_a_500() -> None:
    async def broken() -> CheckResult:
        raise RuntimeError("boom")

    app = create_app(database_ok=_ok, routers=[ops_router({"market_data": broken}, "1")])
    async with _client(app) as client:
        r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["market_data"] == {"ok": False, "detail": "check failed: RuntimeError"}


async def test_metrics_show_what_the_core_handled(core_on: tuple[Services, BotCore]) -> None:  # noqa: F811
    _services, core = core_on
    core.metrics = metrics = Metrics()
    replier = RecordingReplier()
    for text in ("/help", "/price btc", "/nosuchcommand"):
        await core.handle(said(ALICE, text), replier)
    app = create_app(database_ok=_ok, metrics=metrics)
    async with _client(app) as client:
        body = (await client.get("/metrics")).text
    assert 'bastion_messages_total{direction="in",platform="telegram"} 3.0' in body
    assert f'bastion_messages_total{{direction="out",platform="telegram"}} {float(len(replier.sent))}' in body
    for name in ("help", "price", "unknown"):
        assert f'bastion_commands_total{{command="{name}"}} 1.0' in body
    assert 'bastion_handling_latency_seconds_count{kind="command"} 3.0' in body
    assert "bastion_telegram_updates_total 0.0" in body  # the webhook counters share the injected registry


async def test_an_error_in_a_handler_is_counted_and_still_raised() -> None:
    metrics = Metrics()
    core = SimpleNamespace(metrics=metrics, registry=SimpleNamespace(get=lambda name: None))

    async def failing(event: Any, data: dict[str, Any]) -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError):
        await observe(core)(failing, said(ALICE, "hello"), {"replier": RecordingReplier()})  # type: ignore[arg-type]
    assert metrics.value("bastion_errors_total", {"where": "handle_text"}) == 1
    assert metrics.value("bastion_handling_latency_seconds_count", {"kind": "text"}) == 1


async def test_delivery_outcomes_429s_and_outbox_depth(sqlite_url: str) -> None:
    from storage import migrate

    engine = create_engine(sqlite_url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    metrics = Metrics()
    metrics.on_scrape(outbox_depth(sessions, metrics))
    try:
        async with sessions.begin() as s:
            for chat in ("1", "2", "3"):
                await outbox_repo.enqueue(s, platform="telegram", recipient=chat, payload={"text": chat})
        await metrics.render()
        assert metrics.value("bastion_outbox_depth") == 3
        clock = VirtualClock()
        inner = RecordingSender(clock)
        # 60 s, not 5 s: the retry is due on the worker's real wall clock, and a drain that a loaded machine
        # stalls for 5 s would find the row due again and send it.
        inner.script["2"] = [RetryAfter(60)]
        inner.script["3"] = [RecipientGone("blocked")]
        worker = DeliveryWorker(sessions, {"telegram": CountingSender(inner, metrics)}, clock=clock, sleep=clock.sleep)
        await worker.drain()
        body, _ = await metrics.render()
        text = body.decode()
        assert 'bastion_outbox_deliveries_total{outcome="sent",platform="telegram"} 1.0' in text
        assert 'bastion_outbox_deliveries_total{outcome="retry_after",platform="telegram"} 1.0' in text
        assert 'bastion_outbox_deliveries_total{outcome="gone",platform="telegram"} 1.0' in text
        assert 'bastion_rate_limited_total{upstream="telegram"} 1.0' in text
        assert "bastion_outbox_depth 1.0" in text  # the 429'd row waits for its retry
    finally:
        await engine.dispose()


async def test_order_and_model_calls_are_counted_by_outcome() -> None:
    metrics = Metrics()

    class Exec:
        async def execute(self, **kw: Any) -> Any:
            return SimpleNamespace(status=kw["status"])

        async def execute_approved_intent(self, **kw: Any) -> Any:
            raise RuntimeError("exchange down")

    class Model:
        async def complete(self, *a: Any) -> str:
            return "ok"

        async def complete_json(self, *a: Any) -> Any:
            raise SimpleError(429)

        async def stream(self, *a: Any) -> AsyncIterator[str]:
            yield "a"
            yield "b"

    ex, model = Exec(), Model()
    metrics.instrument_executor(ex)
    metrics.instrument_model_client(model)
    await ex.execute(status="placed")
    await ex.execute(status="refused")
    with pytest.raises(RuntimeError):
        await ex.execute_approved_intent()
    assert await model.complete() == "ok"
    with pytest.raises(SimpleError):
        await model.complete_json()
    assert [c async for c in model.stream()] == ["a", "b"]
    v = metrics.value
    assert v("bastion_orders_total", {"outcome": "placed"}) == 1 and v("bastion_orders_total", {"outcome": "refused"})
    assert v("bastion_orders_total", {"outcome": "error"}) == 1
    assert v("bastion_model_calls_total", {"kind": "complete", "outcome": "ok"}) == 1
    assert v("bastion_model_calls_total", {"kind": "complete_json", "outcome": "error"}) == 1
    assert v("bastion_model_calls_total", {"kind": "stream", "outcome": "ok"}) == 1
    assert v("bastion_rate_limited_total", {"upstream": "model"}) == 1
    assert v("bastion_model_latency_seconds_count", {"kind": "stream"}) == 1


class SimpleError(Exception):
    """An error with an HTTP status, like the model client's."""

    def __init__(self, status_code: int) -> None:
        super().__init__(status_code)
        self.status_code = status_code


async def test_docs_are_served_without_a_cdn(tmp_path: Path) -> None:
    app = create_app(database_ok=_ok, routers=[ops_router({}, "1")])
    async with _client(app) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn.jsdelivr" not in page.text
        asset = await client.get("/docs-assets/swagger-ui-bundle.js")
        assert asset.status_code == 200 and len(asset.content) > 100_000
        schema = (await client.get("/openapi.json")).json()
    assert {"/healthz", "/readyz", "/metrics", "/health"} <= set(schema["paths"])


async def test_the_analyst_models_calls_are_counted_through_its_callbacks() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from bot.api.metrics import ModelCallCounter

    metrics = Metrics()
    model = FakeListChatModel(responses=["a", "b"])
    model.callbacks = [ModelCallCounter(metrics)]
    await model.ainvoke("hello")
    assert [chunk.content async for chunk in model.astream("again")] == ["b"]

    class Busy(FakeListChatModel):
        async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
            raise SimpleError(429)

    busy = Busy(responses=["never"], callbacks=[ModelCallCounter(metrics)])
    with pytest.raises(SimpleError):
        await busy.ainvoke("x")
    assert metrics.value("bastion_model_calls_total", {"kind": "analyst", "outcome": "ok"}) == 2
    assert metrics.value("bastion_model_calls_total", {"kind": "analyst", "outcome": "error"}) == 1
    assert metrics.value("bastion_rate_limited_total", {"upstream": "model"}) == 1
    assert metrics.value("bastion_model_latency_seconds_count", {"kind": "analyst"}) == 3
