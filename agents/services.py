"""What the analyst's wiring reads of the application's services and settings, as Protocols.

`bastion.app.Services` and `bastion.settings.Settings` are one implementation; agents sit below bastion in
DESIGN §1's import order, so they name only the fields they use and never import the composition root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.access import AccessPolicy
from engine.execution.executor import Executor
from inference.config import EndpointSettings
from storage.models import ExchangeAccount
from tools.charts.renderer import ChartRenderer
from tools.exchange.base import Account
from tools.market.base import MarketData
from tools.market.providers import PremiumData


class ChatModelSettings(EndpointSettings, Protocol):
    """The model endpoint as the analyst reads it: `EndpointSettings` and whether none is configured."""

    @property
    def offline(self) -> bool:
        """True when no endpoint is set: the offline model answers."""
        ...


class PersistenceSettings(Protocol):
    """Where the graph's checkpoints and preference store live (`bastion.settings.DatabaseSettings`)."""

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite database (checkpoints in their own file)."""
        ...

    @property
    def url(self) -> SecretStr:
        """The application database's URL (PostgreSQL keeps the checkpoints in it)."""
        ...

    @property
    def pool_size(self) -> int:
        """Connection pool size for PostgreSQL."""
        ...

    @property
    def checkpoint_path(self) -> Path:
        """The SQLite checkpoint file."""
        ...

    @property
    def checkpoints_kept(self) -> int | None:
        """Checkpoints kept per conversation (None: all)."""
        ...


class AgentRiskSettings(Protocol):
    """The risk settings the tools and the approval step use."""

    @property
    def default_risk_pct(self) -> float:
        """Risk per trade in % of capital."""
        ...

    @property
    def approval_ttl_s(self) -> int:
        """Seconds an approval button stays valid."""
        ...


class AgentExchangeSettings(Protocol):
    """The exchange settings the tools use."""

    @property
    def paper_balance(self) -> float:
        """Starting USDT balance of a paper account (the default capital)."""
        ...

    @property
    def limit_expiry_h(self) -> float:
        """Hours a paper limit entry without its own expiry waits."""
        ...


class AgentSettings(Protocol):
    """The settings the analyst is built from."""

    @property
    def model(self) -> ChatModelSettings:
        """The model endpoint."""
        ...

    @property
    def risk(self) -> AgentRiskSettings:
        """Risk defaults and the approval lifetime."""
        ...

    @property
    def exchange(self) -> AgentExchangeSettings:
        """Paper account defaults."""
        ...

    @property
    def database(self) -> PersistenceSettings:
        """Where persistence lives."""
        ...

    def access_policy(self) -> AccessPolicy:
        """Who may trade and administer."""
        ...


class AgentServices(Protocol):
    """The services the analyst uses: settings, market data, database, accounts and the execution engine."""

    @property
    def settings(self) -> AgentSettings:
        """The configuration."""
        ...

    @property
    def market(self) -> MarketData:
        """Market data provider."""
        ...

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Database sessions."""
        ...

    @property
    def executor(self) -> Executor:
        """The execution engine."""
        ...

    @property
    def premium(self) -> PremiumData | None:
        """CoinGlass / Whale Alert, when their keys are set."""
        ...

    @property
    def chart_renderer(self) -> ChartRenderer:
        """Draws charts one at a time (shared with the reports)."""
        ...

    async def open_account(self, row: ExchangeAccount) -> Account:
        """The live account behind a stored exchange account."""
        ...

    async def open_fresh_account(self, fresh: ExchangeAccount) -> Account:
        """`open_account` for a row read from the database in this same operation (not read again)."""
        ...
