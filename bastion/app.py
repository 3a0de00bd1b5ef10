"""Composition root: builds the `Services` object from settings and hands it down (no global singletons)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bastion.logs import Redactor
from bastion.settings import Settings, split_keys
from engine.access import AccessPolicy
from engine.execution.executor import Executor
from engine.execution.guards import GuardLimits
from storage.db import create_engine, session_factory
from storage.models import ExchangeAccount
from storage.repositories.accounts import credentials_of
from storage.secrets import SecretBox
from tools.exchange.base import Account
from tools.exchange.ccxt_account import CcxtAccount
from tools.exchange.ids import PAPER
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig
from tools.market.base import MarketData
from tools.market.factory import build_market_data


@dataclass
class Services:
    """Everything a command, channel or job needs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redactor: Redactor
    market: MarketData
    executor: Executor
    _accounts: dict[int, Account] = field(default_factory=dict)

    def secret_box(self) -> SecretBox:
        """The credential cipher; SecretsError with a clear message when BASTION_SECRET_KEYS is unset."""
        return SecretBox(split_keys(self.settings.secret_keys.get_secret_value()))

    async def open_account(self, row: ExchangeAccount) -> Account:
        """The live `Account` of a stored exchange account (kept open for the process)."""
        assert row.id is not None
        if row.id in self._accounts:
            return self._accounts[row.id]
        if row.exchange_id == PAPER:
            account: Account = PaperAccount(f"paper:{row.id}", self.market, self.sessions, self.paper_config())
        else:
            box = self.secret_box()

            def credentials() -> dict[str, Any]:
                # Decrypted at call time only; nothing keeps the plaintext around.
                return credentials_of(box, row)

            account = CcxtAccount(row.exchange_id, credentials)
        self._accounts[row.id] = account
        return account

    def paper_config(self) -> PaperConfig:
        """Paper exchange parameters from the settings (percent settings become fractions)."""
        ex = self.settings.exchange
        return PaperConfig(
            initial_balance=Decimal(str(ex.paper_balance)),
            taker_fee=Decimal(str(ex.paper_fee_pct)) / 100,
            slippage=Decimal(str(ex.paper_slippage_pct)) / 100,
        )

    async def aclose(self) -> None:
        """Close exchange connections and the market data provider."""
        for account in self._accounts.values():
            await account.close()
        self._accounts.clear()
        await self.market.close()


def guard_limits(settings: Settings) -> GuardLimits:
    """Execution guard limits from the BASTION_RISK__* settings."""
    r = settings.risk
    return GuardLimits(
        max_close_pct=r.max_close_pct,
        min_confidence=r.min_confidence,
        max_actions_per_hour=r.max_actions_per_hour,
        daily_loss_limit_usd=r.daily_loss_limit_usd,
    )


def access_policy(settings: Settings) -> AccessPolicy:
    """Who may trade, for the executor's fresh check at the moment an order is placed."""
    # `trading_open` (BASTION_TRADING_OPEN) is read defensively: closed is the safe default without it.
    return AccessPolicy.from_settings(
        settings.allowed_users, settings.admin_users, bool(getattr(settings, "trading_open", False))
    )


@asynccontextmanager
async def build_services(settings: Settings, redactor: Redactor | None = None) -> AsyncIterator[Services]:
    """Create the services for `settings` and release them on exit."""
    redactor = redactor or Redactor()
    redactor.register(*settings.secret_values())
    engine = create_engine(
        settings.database.url.get_secret_value(), echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    sessions = session_factory(engine)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        redactor=redactor,
        market=build_market_data(settings.exchange),
        executor=Executor(sessions, guard_limits(settings), access=access_policy(settings)),
    )
    try:
        yield services
    finally:
        try:
            await services.aclose()
        finally:
            await engine.dispose()
