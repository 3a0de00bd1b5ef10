"""The offline model's reading of order requests: stops and take-profits in the ways people write them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from agents.offline.intents import parse_request
from bastion.app import Services
from storage.repositories import accounts as accounts_repo
from tests.agents.conftest import seed_position
from tests.agents.helpers import chat_on, ctx, executions
from tools.agent_tools.base import num

ORDERS: list[tuple[str, dict[str, Any]]] = [
    ("set stop 2% below entry on my sol long", {"kind": "set_stop", "symbol": "SOL", "side": "long", "offset": -2.0}),
    ("put a stop at 1% below entry on btc", {"kind": "set_stop", "symbol": "BTC", "offset": -1.0, "anchor": "entry"}),
    ("set my eth stop 10 below entry", {"kind": "set_stop", "offset": -10.0, "offset_pct": False, "anchor": "entry"}),
    ("stop 2% above entry on my sol short", {"kind": "set_stop", "side": "short", "offset": 2.0, "anchor": "entry"}),
    ("set stop 0.5% below market on btc", {"kind": "set_stop", "offset": -0.5, "anchor": "price"}),
    ("stop at 1% below the current price on eth", {"kind": "set_stop", "symbol": "ETH", "anchor": "price"}),
    ("stop loss 5% below on sol", {"kind": "set_stop", "offset": -5.0, "anchor": None, "price": None}),
    ("tp sol at 260", {"kind": "set_tp", "symbol": "SOL", "price": 260.0}),
    ("take profit on sol at 260", {"kind": "set_tp", "symbol": "SOL", "price": 260.0}),
    ("set tp2 sol 270", {"kind": "set_tp", "symbol": "SOL", "price": 270.0}),
    ("tp sol 10% above entry", {"kind": "set_tp", "offset": 10.0, "offset_pct": True, "anchor": "entry"}),
    ("set take profit 70000 btc", {"kind": "set_tp", "symbol": "BTC", "price": 70000.0}),
    ("sl btc 58000", {"kind": "set_stop", "symbol": "BTC", "price": 58000.0}),
    ("sl 60k btc", {"kind": "set_stop", "price": 60000.0}),
    ("stop sol at 230", {"kind": "set_stop", "symbol": "SOL", "price": 230.0}),
    ("set sl on eth to 3,100", {"kind": "set_stop", "symbol": "ETH", "price": 3100.0}),
    ("move stop to 2400 on eth", {"kind": "set_stop", "price": 2400.0}),
    ("move my btc stop to breakeven", {"kind": "breakeven", "symbol": "BTC"}),
    ("move sl to be on sol", {"kind": "breakeven", "symbol": "SOL"}),
    ("set stop to entry on sol", {"kind": "breakeven", "symbol": "SOL"}),
    ("take half off sol", {"kind": "close", "symbol": "SOL", "pct": 50.0}),
    ("take profit on 30% of my sol", {"kind": "close", "pct": 30.0}),
    ("close half my sol long", {"kind": "close", "pct": 50.0, "side": "long"}),
    ("size btc entry 60000 stop 59000 risk 1%", {"kind": "size", "entry": 60000.0, "stop": 59000.0}),
    ("entry 60000 stop 59000 btc", {"kind": "size", "entry": 60000.0, "stop": 59000.0}),
]
NOT_ORDERS = [
    ("what will btc be worth", "price"),
    ("is 260 a good target for sol", "unknown"),
    ("my target for sol is 260", "unknown"),
    ("tp 1.5r sol", "unknown"),
]


@pytest.mark.parametrize(("text", "expected"), ORDERS)
def test_order_phrasings(text: str, expected: dict[str, Any]) -> None:
    request = parse_request(text)
    assert {k: getattr(request, k) for k in expected} == expected


@pytest.mark.parametrize(("text", "kind"), NOT_ORDERS)
def test_views_and_questions_are_not_orders(text: str, kind: str) -> None:
    assert parse_request(text).kind == kind


async def _entry(services: Services, user_id: int) -> float:
    async with services.sessions() as session:
        row = (await accounts_repo.list_accounts(session, user_id))[0]
    positions = await (await services.open_account(row)).positions("SOL/USDT:USDT")
    return float(num(positions[0].entry_price) or 0)


async def test_stop_below_entry_is_computed_from_the_position_and_set_after_approval(
    services: Services, user_id: int
) -> None:
    await seed_position(services, user_id)
    expected = num(await _entry(services, user_id) * 0.98)
    async with chat_on(services) as chat:
        reply = await chat.ask(ctx(user_id), "i1", "set stop 2% below entry on my sol long")
        assert reply.approval is not None, reply.text
        assert reply.approval.summary.startswith(f"Set the stop of the SOL/USDT:USDT long to {expected} ")
        done = await chat.decide(ctx(user_id), reply.approval.token, approve=True)
    assert done.text.startswith("Executed: Set the stop"), done.text
    async with services.sessions() as session:
        row = (await accounts_repo.list_accounts(session, user_id))[0]
    position = (await (await services.open_account(row)).positions("SOL/USDT:USDT"))[0]
    assert position.stop_loss == Decimal(str(expected))


async def test_take_profit_above_entry_and_questions_for_what_is_missing(services: Services, user_id: int) -> None:
    await seed_position(services, user_id)
    expected = num(await _entry(services, user_id) * 1.1)
    async with chat_on(services) as chat:
        tp = await chat.ask(ctx(user_id), "i2", "tp sol 10% above entry")
        assert tp.approval is not None
        assert f"take-profit of the SOL/USDT:USDT long to {expected} " in tp.approval.summary
        vague = await chat.ask(ctx(user_id), "i2", "stop loss 5% below on sol")
        assert vague.approval is None and "your entry or the current price?" in vague.text
        none = await chat.ask(ctx(user_id), "i2", "set stop 2% below entry on my eth long")
        assert none.approval is None and "no open ETH long position" in none.text
    assert await executions(services) == 0


def test_an_entry_stop_in_percent_is_never_read_as_a_price_or_a_risk() -> None:
    from agents.offline.intents import parse_entry

    args = parse_entry("long 0.1 sol stop 3% below")
    assert "stop_price" not in args and "risk_pct" not in args
    assert args["relative_stop"] == "stop 3%" and args["amount"] == 0.1
    assert parse_entry("long 0.1 sol stop 3")["stop_price"] == 3.0  # a plain number is a price, as typed
