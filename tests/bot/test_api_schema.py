"""schemathesis against the API's own OpenAPI schema: whatever the schema allows (and what it does not), no 5xx.

The app is built as `bastion serve` builds it: the Telegram webhook, /health, /metrics, the operator API and the
signal webhook over a migrated SQLite database.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, status_code_conformance
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.api.app import create_app, database_check
from bot.api.metrics import Metrics
from bot.api.ops import CheckResult, bool_check, leader_check, migrations_check, ops_router
from bot.api.signals import SignalService, signals_router
from storage import migrate
from storage.db import session_factory

# Schemathesis gives every API operation the same node id: pytest-xdist would run one of them (make test).
pytestmark = pytest.mark.serial


class AcceptingSink:
    """Stands in for the inbox: takes any update."""

    async def feed(self, data: dict[str, Any]) -> object:
        return None


async def _analysis(symbol: str, timeframe: str) -> str:
    return f"{symbol} {timeframe}"


async def _market() -> CheckResult:
    return CheckResult(ok=True, detail="simulated")


def _app() -> Any:
    folder = Path(tempfile.mkdtemp(prefix="bastion-schema-"))
    # NullPool: each request may run on another event loop (the ASGI test client's), so no pooled connection
    # may outlive the loop that opened it.
    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'api.db'}", poolclass=NullPool)
    asyncio.run(migrate.upgrade(engine))
    sessions = session_factory(engine)
    metrics = Metrics()
    checks = {
        "database": bool_check(database_check(engine), "reachable", "unreachable"),
        "migrations": migrations_check(engine),
        "scheduler": leader_check(lambda: True),
        "market_data": _market,
    }
    routers = [
        ops_router(checks, "test"),
        signals_router(SignalService(sessions, _analysis, frozenset({"telegram"})), "schema-secret", metrics),
    ]
    return create_app(
        database_ok=database_check(engine),
        telegram=AcceptingSink(),
        telegram_secret="telegram-secret",
        version="test",
        metrics=metrics,
        routers=routers,
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case: Any) -> None:
    """Every documented operation, with generated valid and invalid inputs: never a 5xx except a documented one."""
    response = case.call()
    # /readyz documents its 503 (a dependency down); the signal webhook documents 503 when it has no secret.
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance])


def test_the_schema_documents_every_route() -> None:
    paths = set(schema.raw_schema["paths"])
    assert {"/health", "/metrics", "/healthz", "/readyz", "/hooks/signal", "/telegram/webhook"} <= paths
    signal = schema.raw_schema["paths"]["/hooks/signal"]["post"]
    assert {"202", "401", "409", "413", "422"} <= set(signal["responses"])
    assert {p["name"] for p in signal["parameters"]} >= {"X-Bastion-Timestamp", "X-Bastion-Signature"}
