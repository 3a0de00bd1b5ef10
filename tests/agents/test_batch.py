"""Flatten winners, close all, cancel all: one approval listing exactly what will be done, refused when the set
changed before the press (nothing placed), each item executed through the executor."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from agents.runner import AnalystChat
from bastion.app import Services
from storage.repositories import accounts as accounts_repo
from tests.agents.helpers import chat_on, ctx, executions
from tests.exchange.fakes import FakeMarket
from tools.exchange.models import IntentKind, OrderIntent, OrderType, PositionSide, Side


@pytest.fixture
def market(services: Services) -> Iterator[FakeMarket]:
    """Prices the test moves, seen by the user's paper account (the services' own market is put back after)."""
    fake, real = FakeMarket(SOL=100.0, ETH=1000.0, BTC=50000.0), services.market
    services.market = fake  # type: ignore[assignment]
    yield fake
    services.market = real


async def _account(services: Services, user_id: int) -> Any:
    async with services.sessions() as session:
        row = (await accounts_repo.list_accounts(session, user_id))[0]
    return await services.open_account(row)


async def _open(account: Any, symbol: str, side: Side, amount: str, **kw: Any) -> None:
    await account.place(
        OrderIntent(
            intent_id=f"seed-{symbol}-{side}-{amount}-{kw.get('price')}",
            account_ref="account:1",
            symbol=f"{symbol}/USDT:USDT",
            kind=IntentKind.OPEN,
            side=side,
            amount=Decimal(amount),
            **kw,
        )
    )


async def _mixed_book(services: Services, user_id: int, market: FakeMarket) -> Any:
    account = await _account(services, user_id)
    await _open(account, "SOL", Side.BUY, "10")
    await _open(account, "ETH", Side.BUY, "1")
    await _open(account, "BTC", Side.SELL, "0.1")
    market.set("SOL", 110.0)  # long in profit
    market.set("ETH", 900.0)  # long at a loss
    market.set("BTC", 49000.0)  # short in profit
    return account


async def _propose(chat: AnalystChat, user_id: int, text: str) -> Any:
    reply = await chat.ask(ctx(user_id), "t", text)
    assert reply.approval is not None, reply.text
    return reply


async def test_flatten_winners_lists_and_closes_only_the_winners(
    services: Services, user_id: int, market: FakeMarket
) -> None:
    account = await _mixed_book(services, user_id, market)
    async with chat_on(services) as chat:
        proposed = await _propose(chat, user_id, "flatten all winners")
        text = proposed.text
        assert "Flatten the winners" in text and "(2):" in text
        assert "- SOL/USDT:USDT long 10 SOL, PnL +" in text and "- BTC/USDT:USDT short 0.1 BTC, PnL +" in text
        assert "ETH" not in text
        done = await chat.decide(ctx(user_id), proposed.approval.token, True)
    assert done.text.startswith("Executed: Flatten the winners"), done.text
    assert "Realised PnL +" in done.text
    left = await account.positions()
    assert [(p.symbol, p.side) for p in left] == [("ETH/USDT:USDT", PositionSide.LONG)]
    assert await executions(services) == 2


async def test_a_set_that_changed_before_the_press_places_nothing(
    services: Services, user_id: int, market: FakeMarket
) -> None:
    account = await _mixed_book(services, user_id, market)
    async with chat_on(services) as chat:
        proposed = await _propose(chat, user_id, "flatten all winners")
        market.set("ETH", 1100.0)  # ETH turned into a winner that the approval did not list
        refused = await chat.decide(ctx(user_id), proposed.approval.token, True)
        assert "Not executed" in refused.text and "ETH/USDT:USDT long was not in the list" in refused.text
        assert len(await account.positions()) == 3 and await executions(services) == 0

        proposed = await _propose(chat, user_id, "close all positions")
        assert "Close all positions" in proposed.text and "(3):" in proposed.text
        await _open(account, "SOL", Side.BUY, "5")  # the SOL long grew from 10 to 15
        refused = await chat.decide(ctx(user_id), proposed.approval.token, True)
        assert "SOL/USDT:USDT long is now 15, not 10" in refused.text, refused.text
        assert len(await account.positions()) == 3 and await executions(services) == 0

        proposed = await _propose(chat, user_id, "close everything")
        done = await chat.decide(ctx(user_id), proposed.approval.token, True)
    assert done.text.startswith("Executed: Close all positions"), done.text
    assert await account.positions() == [] and await executions(services) == 3


async def test_cancel_all_lists_the_orders_and_cancels_them(
    services: Services, user_id: int, market: FakeMarket
) -> None:
    account = await _account(services, user_id)
    await _open(account, "SOL", Side.BUY, "2", order_type=OrderType.LIMIT, price=Decimal(90), stop_price=Decimal(85))
    await _open(account, "ETH", Side.SELL, "1", order_type=OrderType.LIMIT, price=Decimal(1100))
    orders = await account.open_orders()
    assert len(orders) == 3
    async with chat_on(services) as chat:
        proposed = await _propose(chat, user_id, "cancel all orders")
        assert "Cancel all 3 open order(s)" in proposed.text
        assert all(o.id in proposed.text for o in orders)
        done = await chat.decide(ctx(user_id), proposed.approval.token, True)
        assert done.text.startswith("Executed"), done.text
        assert await account.open_orders() == []
        nothing = await chat.ask(ctx(user_id), "t", "cancel all orders")
    assert nothing.approval is None and "no open orders" in nothing.text


async def test_nothing_to_flatten_is_said_not_proposed(services: Services, user_id: int, market: FakeMarket) -> None:
    account = await _account(services, user_id)
    await _open(account, "ETH", Side.BUY, "1")
    market.set("ETH", 900.0)
    async with chat_on(services) as chat:
        reply = await chat.ask(ctx(user_id), "t", "flatten my winners")
    assert reply.approval is None and "none is in profit" in reply.text
