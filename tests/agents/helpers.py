"""Shared helpers of the agent tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langchain_core.language_models import BaseChatModel
from sqlalchemy import func, select

from agents.persistence import open_persistence
from agents.runner import AnalystChat
from agents.state import TurnContext
from agents.wiring import build_chat
from bastion.app import Services
from storage.models import Execution


@asynccontextmanager
async def chat_on(services: Services, model: BaseChatModel | None = None) -> AsyncIterator[AnalystChat]:
    """The analyst chat on the services' persistence: the checkpoint file beside SQLite, or PostgreSQL itself."""
    async with open_persistence(services.settings.database) as persistence:
        yield build_chat(services, persistence, model)


async def executions(services: Services) -> int:
    """How many orders the execution engine claimed."""
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Execution))).scalar_one())


async def sol_size(services: Services, user_id: int) -> float:
    """Size of the user's SOL long on the paper account (0 when none)."""
    from storage.repositories import accounts as accounts_repo

    async with services.sessions() as session:
        row = (await accounts_repo.list_accounts(session, user_id))[0]
    account = await services.open_account(row)
    positions = await account.positions("SOL/USDT:USDT")
    return float(positions[0].size) if positions else 0.0


def ctx(user_id: int) -> TurnContext:
    """The console context of a user (a local platform: it may trade)."""
    return TurnContext(user_id=user_id, platform="console", chat_ref="t", may_trade=True)
