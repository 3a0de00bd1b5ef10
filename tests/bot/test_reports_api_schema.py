"""schemathesis over the report routes (with stored reports): no input gets a server error, every status code
is one the schema documents."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, status_code_conformance
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.api.app import create_app, database_check
from bot.api.reports import reports_router
from storage import migrate
from storage.db import session_factory
from storage.repositories import reports as reports_repo

# Schemathesis gives every API operation the same node id: pytest-xdist would run one of them (make test).
pytestmark = pytest.mark.serial


def _app() -> Any:
    folder = Path(tempfile.mkdtemp(prefix="bastion-reports-schema-"))
    engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'api.db'}", poolclass=NullPool)
    sessions = session_factory(engine)

    async def seed() -> None:
        await migrate.upgrade(engine)
        async with sessions.begin() as session:
            for i in range(3):
                await reports_repo.add_report(
                    session, symbol="BTC/USDT:USDT", timeframe="4h", kind="scheduled", bias="neutral",
                    confidence=0.5, content={}, text="report", chart=b"\x89PNG" if i else None,
                    as_of=datetime(2026, 1, 1, tzinfo=UTC),
                )  # fmt: skip

    asyncio.run(seed())
    return create_app(database_ok=database_check(engine), version="test", routers=[reports_router(sessions)])


schema = schemathesis.openapi.from_asgi("/openapi.json", _app()).include(path_regex="^/v1/reports")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case: Any) -> None:
    """Generated valid and invalid inputs on every report route."""
    case.validate_response(case.call(), checks=[not_a_server_error, status_code_conformance])
