"""Looking an intent up by its client order id on a ccxt account (the settlement of interrupted orders)."""

from __future__ import annotations

import ccxt
import pytest

from tests.exchange.fakehttp import HttpError
from tests.exchange.test_ccxt_faults import ORDER_URL, _close_intent, _lookups, _setup
from tools.exchange.client_ids import client_order_id
from tools.exchange.errors import OrderStatusUnknownError
from tools.exchange.models import OrderRole


async def test_find_intent_returns_the_order_placed_under_the_intents_client_id() -> None:
    account, http, fx, _ = _setup()
    cid = client_order_id("approval-9", OrderRole.MAIN, "binanceusdm")
    http.add("GET", ORDER_URL + "?", {**fx["filledOrder"], "clientOrderId": cid, "executedQty": "0.015"})
    found = await account.find_intent(_close_intent("approval-9"))
    assert found is not None and found.duplicate and found.intent_id == "approval-9"
    assert found.orders[0].client_order_id == cid and found.orders[0].role is OrderRole.MAIN
    assert [r.params["origClientOrderId"] for r in _lookups(http)] == [cid]


async def test_find_intent_is_none_when_the_exchange_has_no_such_order() -> None:
    account, http, fx, _ = _setup()
    http.add("GET", ORDER_URL + "?", HttpError(400, fx["errors"]["notFound"]["body"]))
    assert await account.find_intent(_close_intent("approval-10")) is None


async def test_find_intent_cannot_say_while_the_exchange_is_unreachable() -> None:
    account, http, _, sleeps = _setup()
    http.add("GET", ORDER_URL + "?", ccxt.RequestTimeout("binanceusdm GET timed out"))
    with pytest.raises(OrderStatusUnknownError):  # never "not placed" when the answer is unknown
        await account.find_intent(_close_intent("approval-11"))
    assert len(_lookups(http)) == 4 and len(sleeps.delays) == 3
