"""The operator API: liveness (/healthz), readiness with each dependency reported (/readyz), offline /docs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 3.0
DOCS_ASSETS = "/docs-assets"


class CheckResult(BaseModel):
    """One dependency's state: ok, and what was found in plain words."""

    ok: bool
    detail: str


class Readiness(BaseModel):
    """/readyz answer: ready only when every check is ok."""

    status: str = Field(description="ready | not_ready")
    checks: dict[str, CheckResult]


class Liveness(BaseModel):
    """/healthz answer: the process serves HTTP."""

    status: str = Field(description="always ok while the process answers")
    version: str


ReadinessCheck = Callable[[], Awaitable[CheckResult]]


def bool_check(probe: Callable[[], Awaitable[bool]], ok: str, bad: str) -> ReadinessCheck:
    """A readiness check over a yes/no probe (e.g. the database `SELECT 1`)."""

    async def check() -> CheckResult:
        good = await probe()
        return CheckResult(ok=good, detail=ok if good else bad)

    return check


def migrations_check(engine: AsyncEngine) -> ReadinessCheck:
    """Ready when the database schema is at the head revision this code ships."""
    from storage import migrate

    async def check() -> CheckResult:
        current, head = await migrate.current(engine), migrate.head_revision()
        if current == head:
            return CheckResult(ok=True, detail=f"at head {head}")
        return CheckResult(ok=False, detail=f"schema at {current or 'none'}, code expects {head}: run bastion migrate")

    return check


def leader_check(leader: Callable[[], bool | None]) -> ReadinessCheck:
    """Reports whether this worker leads (runs jobs and delivery); a standby is ready too, an unstarted one not."""

    async def check() -> CheckResult:
        state = leader()
        if state is None:
            return CheckResult(ok=False, detail="leader election not started")
        return CheckResult(ok=True, detail="leader: runs the jobs and delivery" if state else "standby")

    return check


def model_check(settings: Any, timeout_s: float = 2.0) -> ReadinessCheck:
    """The configured model endpoint answers (`inference.health`); no endpoint = the offline model, ready."""
    from inference.health import check_endpoint

    async def check() -> CheckResult:
        report = await check_endpoint(settings, timeout_s=timeout_s)
        if report.status == "not_configured":
            return CheckResult(ok=True, detail="no endpoint configured: the offline model answers")
        return CheckResult(ok=report.ok, detail=report.message)

    return check


def market_check(market: Any, symbol: str = "BTC") -> ReadinessCheck:
    """Market data answers a ticker (labelled when it is the simulated market)."""

    async def check() -> CheckResult:
        ticker = await market.ticker(symbol)
        label = " (simulated market)" if ticker.simulated else ""
        return CheckResult(ok=True, detail=f"{ticker.symbol} {ticker.last:g} from {ticker.source}{label}")

    return check


async def _run(name: str, check: ReadinessCheck, timeout_s: float) -> CheckResult:
    try:
        return await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        return CheckResult(ok=False, detail=f"no answer within {timeout_s:g} s")
    except Exception as exc:  # a failing dependency is a finding, never a 500
        log.warning("readiness check %s failed", name, exc_info=True)
        return CheckResult(ok=False, detail=f"check failed: {type(exc).__name__}")


def ops_router(checks: Mapping[str, ReadinessCheck], version: str, timeout_s: float = CHECK_TIMEOUT_S) -> APIRouter:
    """/healthz and /readyz over the given readiness checks (run concurrently, each bounded by `timeout_s`)."""
    router = APIRouter(tags=["operator"])

    @router.api_route("/healthz", methods=["GET", "HEAD"], response_model=Liveness, summary="Liveness")
    async def healthz() -> Liveness:
        """The process is up and serving HTTP (no dependency is asked)."""
        return Liveness(status="ok", version=version)

    @router.get(
        "/readyz",
        response_model=Readiness,
        summary="Readiness of each dependency",
        responses={503: {"model": Readiness, "description": "a dependency is not ready; see `checks`"}},
    )
    async def readyz(response: Response) -> Readiness:
        """Database, migrations, scheduler leadership, model endpoint and market data, each with its state."""
        names = list(checks)
        results = await asyncio.gather(*(_run(n, checks[n], timeout_s) for n in names))
        found = dict(zip(names, results, strict=True))
        ready = all(r.ok for r in found.values())
        if not ready:
            response.status_code = 503
        return Readiness(status="ready" if ready else "not_ready", checks=found)

    return router


def offline_docs(app: FastAPI) -> None:
    """Serve /docs with Swagger UI from the installed swagger-ui-bundle assets (no CDN: works air-gapped)."""
    import swagger_ui_bundle

    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


def outbox_depth(sessions: Any, metrics: Any) -> Callable[[], Awaitable[None]]:
    """A scrape refresher setting `bastion_outbox_depth` to the pending outbox rows."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from storage.models import Outbox, OutboxStatus

    async def refresh() -> None:
        async with sessions() as session:
            stmt = select(func.count()).select_from(Outbox).where(col(Outbox.status) == OutboxStatus.PENDING.value)
            metrics.outbox_depth.set(int(await session.scalar(stmt) or 0))

    return refresh
