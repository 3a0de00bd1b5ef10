"""Limit entries with an expiry from chat: `limit P for 4h` (free text and /long), the settings' default, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from agents.offline.intents import parse_entry
from bastion.app import Services
from bot.core.commands import CommandDeps, build_registry
from storage import paper as paper_repo
from storage.models import Approval
from tests.agents.helpers import chat_on, ctx
from tools.agent_tools.base import ToolError
from tools.agent_tools.entries import _limit_expiry
from tools.agent_tools.schemas import ProposeOrderArgs

PINNED = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned(services: Services) -> None:
    services.market.set_now(PINNED)  # type: ignore[attr-defined]


async def _intent(services: Services, token: str) -> dict[str, Any]:
    async with services.sessions() as session:
        return dict((await session.scalars(select(Approval).where(Approval.token == token))).one().intent)


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("long btc 0.01 limit 95000 for 4h stop 93000", 4.0),
        ("long btc 0.01 limit 95000 stop 93000 expires in 90m", 1.5),
        ("open a long 0.01 btc limit 95k good for 2 days with the stop at 93k", 48.0),
        ("long btc 0.01 limit 95000 stop 93000", None),
        ("long btc 0.01 stop 93000 for 4h", None),  # a market entry has nothing to expire
    ],
)
def test_the_entry_grammar_reads_the_expiry(text: str, hours: float | None) -> None:
    assert parse_entry(text).get("expiry_hours") == hours


def test_the_slash_command_reads_the_expiry_in_the_same_grammar() -> None:
    deps = CommandDeps(chat=None, sessions=None, secret_box=lambda: None)  # type: ignore[arg-type]
    registry = build_registry(deps)
    command = registry.get("long")
    assert command is not None
    args = registry.parse_args(command, "btc 0.01 limit 95000 for 4h stop 93000")
    assert (args.limit_price, args.expiry_hours, args.stop_price) == (95000, 4.0, 93000)


async def test_a_limit_for_4h_rests_4h_after_the_press_then_expires(services: Services, user_id: int) -> None:
    price = (await services.market.ticker("SOL/USDT:USDT")).last
    limit, stop = round(price * 0.9, 2), round(price * 0.85, 2)
    async with chat_on(services) as chat:
        proposed = await chat.ask(ctx(user_id), "t", f"long sol 0.5 limit {limit} for 4h stop {stop}")
        assert proposed.approval is not None, proposed.text
        assert "The limit rests 4 h after it is placed, then is cancelled unfilled." in proposed.text
        assert (await _intent(services, proposed.approval.token))["expires_after_s"] == 4 * 3600
        services.market.set_now(PINNED + timedelta(minutes=10))  # type: ignore[attr-defined]  # pressed later
        done = await chat.decide(ctx(user_id), proposed.approval.token, True)
    assert done.text.startswith("Executed"), done.text
    async with services.sessions() as s:
        (entry,) = [o for o in await paper_repo.list_orders(s, "paper:1") if o.role == "main"]
    assert entry.expires_at == PINNED + timedelta(minutes=10, hours=4)  # from the placing, at market time


async def test_without_for_the_settings_default_applies_and_is_said(services: Services, user_id: int) -> None:
    price = (await services.market.ticker("SOL/USDT:USDT")).last
    async with chat_on(services) as chat:
        proposed = await chat.ask(ctx(user_id), "t", f"long sol 0.5 limit {round(price * 0.9, 2)} stop {price * 0.8}")
    assert proposed.approval is not None, proposed.text
    assert "rests 24 h (your default)" in proposed.text
    assert (await _intent(services, proposed.approval.token))["expires_after_s"] == 24 * 3600


async def test_an_expiry_on_a_market_entry_or_an_exchange_limit_is_refused(services: Services, user_id: int) -> None:
    deps = SimpleNamespace(default_limit_expiry_h=24.0)
    row = SimpleNamespace(exchange_id="bybit")
    exchange = SimpleNamespace(exchange_id="bybit")
    market = ProposeOrderArgs(symbol="BTC", action="open", side="long", amount=0.1, stop_price=1, expiry_hours=4)
    with pytest.raises(ToolError, match="Only a limit entry can expire"):
        _limit_expiry(deps, market, row, exchange)  # type: ignore[arg-type]
    limit = market.model_copy(update={"limit_price": 2.0})
    with pytest.raises(ToolError, match="A limit on bybit rests until you cancel it"):
        _limit_expiry(deps, limit, row, exchange)  # type: ignore[arg-type]
    # Without a typed expiry an exchange limit is simply good until cancelled (the proposal says so).
    assert _limit_expiry(deps, limit.model_copy(update={"expiry_hours": None}), row, exchange) is None  # type: ignore[arg-type]
