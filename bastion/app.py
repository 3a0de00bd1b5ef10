"""Composition root: builds the `Services` object from settings and hands it down (no global singletons)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bastion.logs import Redactor
from bastion.settings import Settings, split_keys
from engine.execution.executor import Executor
from engine.execution.guards import GuardLimits
from engine.risk.calibration import shipped_table
from storage.db import create_engine, session_factory
from storage.exchange_ids import PAPER
from storage.models import ExchangeAccount
from storage.repositories.accounts import credentials_of
from storage.secrets import SecretBox
from tools.charts.renderer import ChartRenderer
from tools.exchange.base import Account
from tools.exchange.ccxt_account import CcxtAccount
from tools.exchange.errors import AccountError
from tools.exchange.paper import PaperAccount, paper_account_key
from tools.exchange.paper_engine import PaperConfig
from tools.market.base import MarketData
from tools.market.factory import build_market_data
from tools.market.providers import PremiumData, premium_from_settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a command, channel or job needs, built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redactor: Redactor
    market: MarketData
    executor: Executor
    premium: PremiumData | None = None  # CoinGlass / Whale Alert, only when their keys are set
    # One per process: the chart tool and the reports draw through it, one render at a time.
    chart_renderer: ChartRenderer = field(default_factory=ChartRenderer)
    # row id -> (fingerprint of the row the Account was opened from, the Account)
    _accounts: dict[int, tuple[tuple[Any, ...], Account]] = field(default_factory=dict)
    # Replaced Accounts with when they were replaced: closed once nothing can still be using them.
    _retired: list[tuple[float, Account]] = field(default_factory=list)
    retire_grace_s: float = 60.0

    def secret_box(self) -> SecretBox:
        """The credential cipher; SecretsError with a clear message when BASTION_SECRET_KEYS is unset."""
        return SecretBox(split_keys(self.settings.secret_keys.get_secret_value()))

    async def open_account(self, row: ExchangeAccount) -> Account:
        """The live `Account` of a stored exchange account, re-opened when its stored row changed.

        `bastion keys rotate` / `keys remove` run in another process and `/connect` may reuse a removed row's id,
        so the row is read again here: an Account opened from other credentials is replaced, and one whose row
        is gone is refused. A replaced Account is closed after `retire_grace_s`, so a request already running on
        it (an order in flight) is never cut off.
        """
        assert row.id is not None
        async with self.sessions() as session:
            fresh = await session.get(ExchangeAccount, row.id)
        if fresh is None:
            await self._close_retired()
            await self._drop(row.id)
            raise AccountError("This exchange account was removed; connect it again with /connect.")
        return await self.open_fresh_account(fresh)

    async def open_fresh_account(self, fresh: ExchangeAccount) -> Account:
        """`open_account` for a row the caller read from the database in this same operation (the agent tools
        list the user's accounts, then open one): it is not read a second time. One session and one query less
        per account tool call; a row held from earlier must go through `open_account`."""
        assert fresh.id is not None
        await self._close_retired()
        cached = self._accounts.get(fresh.id)
        mark = _fingerprint(fresh)
        if cached is not None and cached[0] == mark:
            return cached[1]
        if fresh.exchange_id == PAPER:
            # One paper account per market data source: switching the source never revalues positions opened on
            # another market's prices.
            key = paper_account_key(fresh.id, self.market)
            account: Account = PaperAccount(key, self.market, self.sessions, self.paper_config())
        else:
            box = self.secret_box()

            def credentials() -> dict[str, Any]:
                # Decrypted at call time only; nothing keeps the plaintext around.
                return credentials_of(box, fresh)

            account = CcxtAccount(fresh.exchange_id, credentials)
        self._accounts[fresh.id] = (mark, account)
        if cached is not None:
            self._retired.append((time.monotonic(), cached[1]))
        return account

    async def _drop(self, account_id: int) -> None:
        cached = self._accounts.pop(account_id, None)
        if cached is not None:
            self._retired.append((time.monotonic(), cached[1]))

    async def _close_retired(self, *, everything: bool = False) -> None:
        due = time.monotonic() - self.retire_grace_s
        keep: list[tuple[float, Account]] = []
        for at, account in self._retired:
            if everything or at <= due:
                await _close_quietly(account)
            else:
                keep.append((at, account))
        self._retired = keep

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
        for _, account in self._accounts.values():
            await account.close()
        self._accounts.clear()
        await self._close_retired(everything=True)
        await self.market.close()
        if self.premium is not None:
            await self.premium.aclose()


def _fingerprint(row: ExchangeAccount) -> tuple[Any, ...]:
    """What an open Account depends on; a change to any of it means re-opening (mode or arming do not count).

    Fernet ciphertext differs on every encryption, so rotated or replaced keys always change the digest.
    """
    digest = hashlib.sha256((row.credentials_encrypted or "").encode()).hexdigest()
    return (row.user_id, row.exchange_id, row.sandbox, digest)


async def _close_quietly(account: Account) -> None:
    try:
        await account.close()
    except Exception:  # a stale connection failing to close must not fail the request that replaced it
        log.warning("closing a replaced exchange account failed", exc_info=True)


def guard_limits(settings: Settings) -> GuardLimits:
    """Execution guard limits from the BASTION_RISK__* settings."""
    r = settings.risk
    table = shipped_table()
    top = max([*table.table.values(), table.default]) if table is not None else None
    if top is not None and r.min_confidence > top:
        # A minimum carried over from the rules' own scale (0.7 before) silently turns auto mode into hard rules only.
        log.warning(
            "BASTION_RISK__MIN_CONFIDENCE %.2f is above every calibrated confidence (at most %.2f): auto mode "
            "executes only hard-rule exits and protective stops, and model decisions that clear it",
            r.min_confidence,
            top,
        )
    return GuardLimits(
        max_close_pct=r.max_close_pct,
        min_confidence=r.min_confidence,
        max_actions_per_hour=r.max_actions_per_hour,
        daily_loss_limit_usd=r.daily_loss_limit_usd,
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
        executor=Executor(sessions, guard_limits(settings), access=settings.access_policy()),
        premium=premium_from_settings(settings.providers),
    )
    try:
        yield services
    finally:
        try:
            await services.aclose()
        finally:
            await engine.dispose()
