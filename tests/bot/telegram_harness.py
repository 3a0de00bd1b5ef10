"""A running `bastion serve` (Telegram channel on the real PTB) against the fake Bot API, for end-to-end tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bastion.app import Services, build_services
from bastion.serve import Server, open_server
from bastion.settings import Settings
from storage import migrate
from storage.models import AccountMode, Execution
from storage.repositories import accounts as accounts_repo
from storage.repositories import engine as engine_repo
from storage.repositories import users as users_repo
from storage.secrets import SecretBox
from tests.fakes.telegram_api import FakeTelegram
from tools.exchange.models import IntentKind, OrderIntent, Side

ALICE, BOB = 1001, 1002
GROUP = -5001
SECRET_KEY = SecretBox.generate_key()


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_settings(
    fake: FakeTelegram, db_url: str, tmp_path: Path, *, api_port: int | None = None, **telegram: Any
) -> Settings:
    """Defaults (simulated market, paper exchange, offline model) with the Telegram channel on the fake."""
    return Settings(
        secret_keys=SECRET_KEY,
        allowed_users=[f"telegram:{ALICE}"],  # trading is closed by default: ALICE is the operator's trader
        database={"url": db_url, "checkpoint_path": tmp_path / "checkpoints.db"},
        telegram={"enabled": True, "token": fake.token, "base_url": fake.base_url, **telegram},
        api={"enabled": api_port is not None, "port": api_port or 8080},
        scheduler={"enabled": False},
    )


@dataclass
class Running:
    """A started server and what the tests look at."""

    fake: FakeTelegram
    services: Services
    server: Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop the server and wait until every part has."""
        self.server.stop.set()
        await asyncio.wait_for(self.task, timeout=20)


@asynccontextmanager
async def running(
    services: Services, fake: FakeTelegram, prepare: Callable[[Server], None] | None = None
) -> AsyncIterator[Running]:
    """`bastion serve` on these services until the block ends; `prepare` may adjust the server before it starts."""
    async with open_server(services) as server:
        if prepare is not None:
            prepare(server)
        task = asyncio.create_task(server.run())
        run = Running(fake, services, server, task)
        try:
            await fake.wait_for(lambda: server.started.is_set() or task.done(), timeout=15)
            if task.done():
                await task
            yield run
        finally:
            if not task.done():
                await run.stop()


@asynccontextmanager
async def telegram_services(settings: Settings) -> AsyncIterator[Services]:
    """Services on a migrated database."""
    async with build_services(settings) as services:
        await migrate.upgrade(services.engine)
        yield services


async def trader_with_sol_long(services: Services, telegram_user: int, amount: str = "10") -> int:
    """A Telegram user with an armed paper account (advise mode) holding a SOL long; returns the user id."""
    async with services.sessions.begin() as session:
        user = await users_repo.get_or_create_user(session, "telegram", str(telegram_user), "Alice")
        assert user.id is not None
        row = await accounts_repo.add_account(
            session, None, user_id=user.id, exchange_id="paper", label="paper", credentials={}
        )
        assert row.id is not None
        await engine_repo.set_account_mode(session, row.id, mode=AccountMode.ADVISE, armed=True)
    account = await services.open_account(row)
    await account.place(
        OrderIntent(
            intent_id=f"seed-{telegram_user}",
            account_ref=f"account:{row.id}",
            symbol="SOL/USDT:USDT",
            kind=IntentKind.OPEN,
            side=Side.BUY,
            amount=Decimal(amount),
        )
    )
    return user.id


async def sol_size(services: Services, user_id: int) -> float:
    """Size of the user's SOL long (0 when none)."""
    async with services.sessions() as session:
        row = (await accounts_repo.list_accounts(session, user_id))[0]
    positions = await (await services.open_account(row)).positions("SOL/USDT:USDT")
    return float(positions[0].size) if positions else 0.0


async def executions(services: Services) -> int:
    """Orders claimed by the execution engine."""
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Execution))).scalar_one())
