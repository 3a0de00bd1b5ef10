"""Shared plumbing of the agent tools: dependencies, per-call context, errors and compact JSON output."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import StorageError
from storage.models import ExchangeAccount
from storage.repositories import accounts as accounts_repo
from tools.charts.renderer import ChartRenderer
from tools.charts.store import ChartStore
from tools.exchange.base import Account
from tools.exchange.errors import AccountError
from tools.exchange.models import Position
from tools.market.base import MarketData, MarketDataError
from tools.market.cache import CoalescingCache
from tools.market.providers.premium import PremiumData
from tools.market.symbols import normalise_symbol
from tools.structure.mtf import StructureCache

# Significant digits kept in tool outputs: enough for any price, few enough that the model quotes them as given.
SIG_DIGITS = 6


class ToolError(Exception):
    """A tool could not answer; the message is returned to the model (and may reach the user)."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


# Errors a tool turns into a message for the model instead of a crash.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (ToolError, MarketDataError, AccountError, StorageError, ValueError)


class PreferenceStore(Protocol):
    """The part of a LangGraph `BaseStore` the tools use (per-user preferences)."""

    async def aget(self, namespace: tuple[str, ...], key: str) -> Any: ...

    async def aput(self, namespace: tuple[str, ...], key: str, value: dict[str, Any]) -> None: ...


class PositionEvaluator(Protocol):
    """Evaluates one open position against the market (the risk engine's rules), as JSON-like data."""

    async def __call__(self, position: Position, timeframe: str) -> dict[str, Any]: ...


@dataclass
class ToolDeps:
    """What the tools need from the services, passed in so tools never import the composition root."""

    market: MarketData
    sessions: async_sessionmaker[AsyncSession]
    # Opens a row `user_account` has just read (`Services.open_fresh_account`: it is not read again).
    open_account: Callable[[ExchangeAccount], Awaitable[Account]]
    default_risk_pct: float = 2.0
    default_capital: float = 10_000.0
    default_limit_expiry_h: float = 24.0  # a paper limit entry without `for 4h` expires after this
    # Rendered charts travel as bytes in memory (the conversation state keeps only their id): no files on the server.
    charts: ChartStore = field(default_factory=ChartStore)
    # One renderer per process (the composition root shares it with the reports): charts are drawn one at a time.
    renderer: ChartRenderer = field(default_factory=ChartRenderer)
    cache: StructureCache = field(default_factory=StructureCache)
    # Risk evaluation lives in engine/, above tools/: the composition root passes it in.
    evaluate: PositionEvaluator | None = None
    # Market tool results shared by every user for a moment (see market_tools): many people ask about one coin.
    results: CoalescingCache = field(default_factory=lambda: CoalescingCache(max_entries=1024))
    # Optional premium providers (tools.market.providers.PremiumData): their context joins the market overview.
    premium: PremiumData | None = None


@dataclass
class ToolContext:
    """Who is asking: the database user id, and the preference store (None in contexts without one)."""

    user_id: int
    store: PreferenceStore | None = None


PREFS_KEY = "preferences"


def prefs_namespace(user_id: int) -> tuple[str, ...]:
    """Store namespace of one user's preferences."""
    return ("users", str(user_id))


async def load_preferences(ctx: ToolContext) -> dict[str, Any]:
    """The user's saved preferences (risk_pct, capital, watchlist), empty when none."""
    if ctx.store is None:
        return {}
    item = await ctx.store.aget(prefs_namespace(ctx.user_id), PREFS_KEY)
    return dict(item.value) if item is not None else {}


def symbol_of(text: str) -> str:
    """Unified symbol of any common spelling; ToolError when it cannot be parsed."""
    try:
        return normalise_symbol(text)
    except ValueError as exc:
        raise ToolError(f"{text!r} is not a symbol I know how to read ({exc}).") from None


def num(value: float | Decimal | None, digits: int = SIG_DIGITS) -> float | None:
    """A number rounded to `digits` significant digits (None and non-finite values become None)."""
    if value is None:
        return None
    x = float(value)
    if not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def dumps(data: Any) -> str:
    """Compact JSON for the model."""
    return json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=False)


async def user_account(deps: ToolDeps, ctx: ToolContext, label: str | None) -> tuple[ExchangeAccount, Account]:
    """The user's account by label (their first one when no label is given), opened."""
    async with deps.sessions() as session:
        rows = await accounts_repo.list_accounts(session, ctx.user_id)
    if not rows:
        raise ToolError("No exchange account is connected. Connect one first (a paper account works offline).")
    if label:
        chosen = [r for r in rows if r.label.lower() == label.strip().lower()]
        if not chosen:
            labels = ", ".join(r.label for r in rows)
            raise ToolError(f"No account labelled {label!r}; your accounts: {labels}.")
        row = chosen[0]
    else:
        row = rows[0]
    return row, await deps.open_account(row)
