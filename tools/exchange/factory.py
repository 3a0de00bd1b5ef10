"""Build the right `Account` for an exchange id: the paper exchange or a ccxt connection."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.exchange_ids import CCXT_EXCHANGES, PAPER
from tools.exchange.base import Account
from tools.exchange.ccxt_account import CcxtAccount, CredentialsProvider
from tools.exchange.errors import UnsupportedError
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig
from tools.market.base import MarketData


def make_account(
    exchange_id: str,
    account_id: str,
    *,
    market: MarketData | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
    credentials: CredentialsProvider | None = None,
    paper_config: PaperConfig | None = None,
) -> Account:
    """`paper` needs market + sessions; a ccxt exchange needs a credentials provider (called per request)."""
    if exchange_id == PAPER:
        if market is None or sessions is None:
            raise ValueError("the paper account needs a market data provider and a session factory")
        return PaperAccount(account_id, market, sessions, paper_config)
    if exchange_id in CCXT_EXCHANGES:
        if credentials is None:
            raise ValueError(f"{exchange_id} needs a credentials provider")
        return CcxtAccount(exchange_id, credentials)
    raise UnsupportedError(f"{exchange_id!r} is not a supported exchange.")
