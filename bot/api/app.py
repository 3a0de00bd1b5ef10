"""The HTTP API (FastAPI): Telegram webhook receiver, health and Prometheus metrics."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from fastapi import FastAPI, Header, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
TELEGRAM_PATH = "/telegram/webhook"


class UpdateSink(Protocol):
    """Where webhook updates go (the Telegram channel's update queue)."""

    async def feed(self, data: dict[str, Any]) -> None:
        """Queue one update."""
        ...


def database_check(engine: AsyncEngine) -> Callable[[], Awaitable[bool]]:
    """A health probe that runs `SELECT 1`."""

    async def check() -> bool:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("health check: database unreachable", exc_info=True)
            return False

    return check


def create_app(
    *,
    database_ok: Callable[[], Awaitable[bool]],
    telegram: UpdateSink | None = None,
    telegram_secret: str | None = None,
    version: str = "",
) -> FastAPI:
    """The API application; the Telegram route exists only when a sink and its secret are given."""
    app = FastAPI(title="Bastion", version=version or "0")
    registry = CollectorRegistry()
    updates = Counter("bastion_telegram_updates", "Telegram webhook updates accepted", registry=registry)
    rejected = Counter("bastion_webhook_rejected", "Webhook requests refused", ["reason"], registry=registry)

    @app.get("/health")
    async def health(response: Response) -> dict[str, Any]:
        """Liveness and database reachability."""
        db = await database_ok()
        if not db:
            response.status_code = 503
        return {"status": "ok" if db else "degraded", "database": db, "version": version}

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    if telegram is not None and telegram_secret:
        secret = telegram_secret.encode()

        @app.post(TELEGRAM_PATH)
        async def telegram_webhook(
            request: Request, token: str | None = Header(default=None, alias="X-Telegram-Bot-Api-Secret-Token")
        ) -> dict[str, bool]:
            """Telegram posts updates here; the secret token header must match."""
            if token is None or not hmac.compare_digest(token.encode(), secret):
                rejected.labels(reason="secret").inc()
                raise HTTPException(status_code=403, detail="bad secret token")
            try:
                data = await request.json()
            except ValueError:
                rejected.labels(reason="body").inc()
                raise HTTPException(status_code=400, detail="body is not JSON") from None
            if not isinstance(data, dict) or "update_id" not in data:
                rejected.labels(reason="body").inc()
                raise HTTPException(status_code=400, detail="not a Telegram update")
            await telegram.feed(data)
            updates.inc()
            return {"ok": True}

    return app
