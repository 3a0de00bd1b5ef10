"""Entries from chat on the paper account: long and short, market and limit, sized from risk, the structural stop,
the protective orders placed with the entry and triggered later, and every bad setup refused with its reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from agents.runner import AnalystChat, Reply
from agents.wiring import build_toolkit
from bastion.app import Services
from storage.models import Approval
from storage.repositories import accounts as accounts_repo
from tests.agents.conftest import seed_position
from tests.agents.helpers import chat_on, ctx, executions
from tests.exchange.fakes import FakeMarket
from tools.agent_tools.structure_data import structure_of
from tools.exchange.models import OrderRole, PositionSide
from tools.exchange.paper import PaperAccount
from tools.structure.targets import plan_from_report

# A moment of the simulated market at which the structure engine accepts a 1h plan for a SOL long (and some plan for
# a SOL short): the tests read the same candles whatever the wall clock says.
PINNED = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def pinned(services: Services) -> None:
    """Freeze the simulated market at `PINNED`."""
    services.market.set_now(PINNED)  # type: ignore[attr-defined]


async def _account(services: Services, user_id: int) -> Any:
    async with services.sessions() as session:
        row = (await accounts_repo.list_accounts(session, user_id))[0]
    return row, await services.open_account(row)


async def _approvals(services: Services) -> int:
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Approval))).scalar_one())


async def _enter(chat: AnalystChat, user_id: int, text: str) -> tuple[Reply, Reply]:
    proposed = await chat.ask(ctx(user_id), "t", text)
    assert proposed.approval is not None, proposed.text
    done = await chat.decide(ctx(user_id), proposed.approval.token, True)
    return proposed, done


def _entry_of(reply: Reply) -> float:
    found = re.search(r"Entry ([\d,.]+), stop", reply.text)
    assert found is not None, reply.text
    return float(found.group(1).replace(",", ""))


async def _intent(services: Services, reply: Reply) -> dict[str, Any]:
    assert reply.approval is not None
    async with services.sessions() as session:
        row = (await session.scalars(select(Approval).where(Approval.token == reply.approval.token))).one()
    return dict(row.intent)


async def test_market_long_with_the_structural_stop_places_stop_and_target(services: Services, user_id: int) -> None:
    async with chat_on(services) as chat:
        proposed, done = await _enter(chat, user_id, "long 0.1 sol stop auto")
    intent = await _intent(services, proposed)
    _, account = await _account(services, user_id)
    # The auto stop is the plan's stop at the entry shown (same market data, same structure engine).
    report, _ = await structure_of(build_toolkit(services).deps, "SOL/USDT:USDT", "1h")
    entry = _entry_of(proposed)
    plan = plan_from_report(report, "long", entry=entry)
    assert float(intent["stop_price"]) == pytest.approx(plan.stop, rel=1e-5)
    for fragment in (
        "Open a SOL/USDT:USDT long of 0.1 SOL at market",
        "structural, 1h plan",
        "T1 ",
        "R:R",
        "Risk ",
        "% of 10,000.00 USDT",
        "liquidation near",
    ):
        assert fragment in proposed.text, proposed.text
    assert done.text.startswith("Executed: Open a SOL/USDT:USDT long"), done.text
    [position] = await account.positions("SOL/USDT:USDT")
    assert (position.side, position.size) == (PositionSide.LONG, Decimal("0.1"))
    orders = {o.role: o for o in await account.open_orders("SOL/USDT:USDT")}
    assert set(orders) == {OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT}
    assert all(o.reduce_only for o in orders.values())
    assert orders[OrderRole.STOP_LOSS].trigger_price == Decimal(intent["stop_price"])
    assert orders[OrderRole.TAKE_PROFIT].trigger_price == Decimal(intent["take_profit_price"])
    assert await executions(services) == 1


async def test_short_with_given_stop_and_targets_and_leverage(services: Services, user_id: int) -> None:
    _, account = await _account(services, user_id)
    price = float((await services.market.ticker("ETH/USDT:USDT")).last)
    stop, t1, t2 = round(price * 1.02, 2), round(price * 0.96, 2), round(price * 0.94, 2)
    async with chat_on(services) as chat:
        proposed, _ = await _enter(chat, user_id, f"/short eth 0.2 stop {stop} tp {t1},{t2} lev 3")
    intent = await _intent(services, proposed)
    assert (intent["side"], intent["leverage"], Decimal(intent["stop_price"])) == ("sell", 3, Decimal(str(stop)))
    assert Decimal(intent["take_profit_price"]) == Decimal(str(t2))
    [position] = await account.positions("ETH/USDT:USDT")
    assert (position.side, position.size, position.leverage) == (PositionSide.SHORT, Decimal("0.2"), Decimal(3))
    assert position.stop_loss == Decimal(str(stop)) and position.take_profit == Decimal(str(t2))
    assert "3x" in proposed.text and "T1 " in proposed.text and "T2 " in proposed.text


async def test_size_from_risk_percent_of_capital(services: Services, user_id: int) -> None:
    async with chat_on(services) as chat:
        proposed, _ = await _enter(chat, user_id, "long sol 1% stop auto")
    intent = await _intent(services, proposed)
    entry = _entry_of(proposed)
    risk = float(intent["amount"]) * (entry - float(intent["stop_price"]))
    # 1% of the 10,000 USDT paper balance, rounded down (never above the risk asked for).
    assert 99.0 < risk <= 100.0 * (1 + 1e-5), (risk, proposed.text)  # the entry shown has 6 digits
    assert "1% risk of" in proposed.text
    _, account = await _account(services, user_id)
    [position] = await account.positions("SOL/USDT:USDT")
    assert position.size == Decimal(intent["amount"])


async def test_limit_entry_rests_then_fills_and_its_stop_triggers_later(services: Services, user_id: int) -> None:
    price = float((await services.market.ticker("SOL/USDT:USDT")).last)
    limit, stop = round(price * 0.97, 2), round(price * 0.94, 2)
    async with chat_on(services) as chat:
        proposed, done = await _enter(
            chat, user_id, f"long sol 0.5 limit {limit} stop {stop} tp {round(price * 1.1, 2)}"
        )
    assert "at limit" in proposed.text and done.text.startswith("Executed"), done.text
    _, live = await _account(services, user_id)
    assert await live.positions("SOL/USDT:USDT") == []
    # The same account, now seeing a market the test moves: the target above does not fire while the entry rests.
    market = FakeMarket(SOL=price * 1.11)
    market.at = PINNED  # the simulated market's moment: the limit's default expiry (24 h) is still ahead
    account = PaperAccount(live.account_id, market, services.sessions, live.config)
    assert await account.positions("SOL/USDT:USDT") == []
    assert {o.role for o in await account.open_orders("SOL/USDT:USDT")} == {
        OrderRole.MAIN,
        OrderRole.STOP_LOSS,
        OrderRole.TAKE_PROFIT,
    }
    market.set("SOL", limit * 0.999)  # the limit is crossed: the entry fills at its price
    [position] = await account.positions("SOL/USDT:USDT")
    assert position.size == Decimal("0.5") and position.entry_price == Decimal(str(limit))
    market.set("SOL", stop * 1.001)
    assert await account.positions("SOL/USDT:USDT")  # still above the stop
    market.set("SOL", stop * 0.999)  # through the stop: closed, the target cancelled with it
    assert await account.positions("SOL/USDT:USDT") == []
    assert await account.open_orders("SOL/USDT:USDT") == []
    balance = await account.balance()
    assert balance.wallet is not None and balance.wallet < Decimal(10_000)


async def test_market_entry_stop_triggered_by_a_later_price(services: Services, user_id: int) -> None:
    async with chat_on(services) as chat:
        proposed, _ = await _enter(chat, user_id, "short sol 0.3 stop auto")
    stop = Decimal((await _intent(services, proposed))["stop_price"])
    _, live = await _account(services, user_id)
    market = FakeMarket(SOL=float(stop) * 0.995)
    account = PaperAccount(live.account_id, market, services.sessions, live.config)
    assert await account.positions("SOL/USDT:USDT")
    market.set("SOL", float(stop) * 1.001)
    assert await account.positions("SOL/USDT:USDT") == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("long sol 0.1 stop {above}", "stop must be below the entry"),
        ("short sol 0.1 stop {below}", "stop must be above the entry"),
        ("long sol 5% stop auto", "above your maximum of 2% per trade"),
        ("long sol 100 stop {below}", "above your maximum of 2% per trade"),
        ("long sol 0.1 stop {below} tp {half_r}", "T1 must be at least 1R"),
        ("long notacoin 1 stop 5", "Unknown symbol"),
        ("long sol 0.1", "An entry always has a stop"),
        ("long sol 0.1 stop {below} lev 100", "liquidated"),
        ("short sol 0.1 stop {above}", "close it first"),
    ],
)
async def test_bad_setups_are_refused_with_the_reason(services: Services, user_id: int, text: str, reason: str) -> None:
    if "close it first" in reason:
        await seed_position(services, user_id, "SOL", "1")
    price = float((await services.market.ticker("SOL/USDT:USDT")).last)
    below, above = round(price * 0.95, 2), round(price * 1.05, 2)
    text = text.format(below=below, above=above, half_r=round(price + 0.5 * (price - below), 2))
    async with chat_on(services) as chat:
        reply = await chat.ask(ctx(user_id), "t", text)
    assert reply.approval is None and reason in reply.text, reply.text
    assert await _approvals(services) == 0 and await executions(services) == 0
    _, account = await _account(services, user_id)
    assert [(p.side, p.size) for p in await account.positions()] == (
        [(PositionSide.LONG, Decimal(1))] if "close it first" in reason else []
    )


async def test_an_entry_is_refused_for_a_context_that_may_not_trade(services: Services, user_id: int) -> None:
    from agents.state import TurnContext

    async with chat_on(services) as chat:
        reply = await chat.ask(TurnContext(user_id=user_id, chat_ref="t"), "t", "long sol 0.1 stop auto")
    assert reply.approval is None and await _approvals(services) == 0 and await executions(services) == 0
