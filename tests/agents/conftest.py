"""Fixtures of the agent tests: services on a migrated database, the console user with a paper account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bastion.app import Services, build_services
from bastion.settings import Settings
from bot.console import ensure_console_user
from storage import migrate
from storage.repositories import accounts as accounts_repo
from tools.exchange.models import IntentKind, OrderIntent, Side


def make_settings(db_url: str, tmp_path: Path, **model: Any) -> Settings:
    """Defaults (simulated market, paper exchange) on the test database."""
    return Settings(
        database={"url": db_url, "checkpoint_path": tmp_path / "checkpoints.db"},
        model=model or {},
    )


@pytest.fixture
async def services(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    """Services on a migrated SQLite database."""
    async with build_services(make_settings(sqlite_url, tmp_path)) as svc:
        await migrate.upgrade(svc.engine)
        yield svc


@pytest.fixture
async def user_id(services: Services) -> int:
    """The console user, with its armed paper account."""
    return await ensure_console_user(services.sessions)


async def seed_position(services: Services, user_id: int, symbol: str = "SOL", amount: str = "10") -> None:
    """Open a long on the user's paper account (the 'seeded paper account' of the tests)."""
    async with services.sessions() as session:
        row = (await accounts_repo.list_accounts(session, user_id))[0]
    account = await services.open_account(row)
    intent = OrderIntent(
        intent_id=f"seed-{symbol}-{amount}",
        account_ref=f"account:{row.id}",
        symbol=f"{symbol}/USDT:USDT",
        kind=IntentKind.OPEN,
        side=Side.BUY,
        amount=Decimal(amount),
    )
    await account.place(intent)
