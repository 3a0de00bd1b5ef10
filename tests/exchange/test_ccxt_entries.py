"""An entry with its stop and take-profit through ccxt's real request building, offline, per exchange: the exact
requests sent (the protection attached to the entry where the exchange supports it, else reduce-only trigger
orders placed right after it), each with the client id derived from the intent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.exchange.test_ccxt_requests import _account, _clean, _fill
from tools.exchange.client_ids import client_order_id
from tools.exchange.models import IntentKind, OrderIntent, OrderRole, Side

POST, GET = "POST", "GET"
# What each exchange must receive for the fixture's position opened again with a stop 3% and a target 5% away
# (rounded to whole prices). MAIN / SL / TP are the client ids of the entry and its protective orders.
# fmt: off
EXPECTED: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "bybit": [
        (POST, "https://api.bybit.com/v5/order/create", {
            "symbol": "BTCUSDT", "side": "Sell", "orderType": "Market", "orderLinkId": "MAIN", "category": "linear",
            "qty": "0.05", "stopLoss": "100323", "takeProfit": "92530"}),
    ],
    "binanceusdm": [
        (POST, "https://fapi.binance.com/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "newClientOrderId": "MAIN", "newOrderRespType": "RESULT",
            "type": "MARKET", "quantity": "0.015"}),
        (POST, "https://fapi.binance.com/fapi/v1/algoOrder", {
            "symbol": "BTCUSDT", "side": "SELL", "clientAlgoId": "SL", "newOrderRespType": "RESULT",
            "type": "STOP_MARKET", "quantity": "0.015", "triggerPrice": "93363", "reduceOnly": "true",
            "algoType": "CONDITIONAL"}),
        (POST, "https://fapi.binance.com/fapi/v1/algoOrder", {
            "symbol": "BTCUSDT", "side": "SELL", "clientAlgoId": "TP", "newOrderRespType": "RESULT",
            "type": "TAKE_PROFIT_MARKET", "quantity": "0.015", "triggerPrice": "101063", "reduceOnly": "true",
            "algoType": "CONDITIONAL"}),
    ],
    "okx": [
        (POST, "https://www.okx.com/api/v5/trade/batch-orders", {"__list__": [{
            "instId": "BTC-USDT-SWAP", "side": "buy", "ordType": "market", "sz": "1.5", "tdMode": "cross",
            "attachAlgoOrds": [{"slTriggerPx": "93363", "slOrdPx": "-1", "slTriggerPxType": "last",
                                "tpTriggerPx": "101063", "tpOrdPx": "-1", "tpTriggerPxType": "last"}],
            "clOrdId": "MAIN"}]}),
    ],
    "bitget": [
        (POST, "https://api.bitget.com/api/v2/mix/order/place-order", {
            "symbol": "ETHUSDT", "orderType": "market", "force": "GTC", "marginCoin": "USDT", "size": "0.5",
            "productType": "USDT-FUTURES", "clientOid": "MAIN", "presetStopLossPrice": "3115",
            "presetStopSurplusPrice": "2873", "marginMode": "crossed", "side": "sell"}),
    ],
    "blofin": [
        (POST, "https://openapi.blofin.com/api/v1/trade/order", {
            "instId": "SOL-USDT", "side": "buy", "orderType": "market", "size": "20", "brokerId": "ec6dd3a7dd982d0b",
            "marginMode": "cross", "slTriggerPrice": "228", "slOrderPrice": "-1", "tpTriggerPrice": "247",
            "tpOrderPrice": "-1", "clientOrderId": "MAIN"}),
    ],
    # Deribit (GET JSON-RPC): no attached protection, so the buy, then a reduce-only stop_market and take_market
    # for the whole size, each labelled with its client id (the label lookup before each is not an order).
    "deribit": [
        (GET, "https://www.deribit.com/api/v2/private/buy", {
            "instrument_name": "BTC_USDC-PERPETUAL", "amount": "0.015", "type": "market", "label": "MAIN"}),
        (GET, "https://www.deribit.com/api/v2/private/sell", {
            "instrument_name": "BTC_USDC-PERPETUAL", "amount": "0.015", "type": "stop_market", "trigger_price": "93363",
            "trigger": "last_price", "reduce_only": "true", "label": "SL"}),
        (GET, "https://www.deribit.com/api/v2/private/sell", {
            "instrument_name": "BTC_USDC-PERPETUAL", "amount": "0.015", "type": "take_market",
            "trigger_price": "101063", "trigger": "last_price", "reduce_only": "true", "label": "TP"}),
    ],
}
# fmt: on
PENDING: set[str] = set()


@pytest.mark.parametrize("exchange_id", sorted(EXPECTED))
async def test_entry_with_stop_and_take_profit_sends_exact_requests(exchange_id: str) -> None:
    account, http, fx = _account(exchange_id)
    position = fx["expected"]["position"]
    long = position["side"] == "long"
    entry = Decimal(position["entry_price"])
    stop = (entry * Decimal("0.97" if long else "1.03")).quantize(Decimal(1))
    target = (entry * Decimal("1.05" if long else "0.95")).quantize(Decimal(1))
    intent = OrderIntent(
        intent_id="approval-open-1",
        account_ref="user-1",
        symbol=fx["symbol"],
        kind=IntentKind.OPEN,
        side=Side.BUY if long else Side.SELL,
        amount=Decimal(position["size"]),
        stop_price=stop,
        take_profit_price=target,
    )
    result = await account.place(intent)
    ids = {
        "MAIN": client_order_id("approval-open-1", OrderRole.MAIN, exchange_id),
        "SL": client_order_id("approval-open-1", OrderRole.STOP_LOSS, exchange_id),
        "TP": client_order_id("approval-open-1", OrderRole.TAKE_PROFIT, exchange_id),
    }
    urls = {url for _, url, _ in EXPECTED[exchange_id]}
    methods = {m for m, _, _ in EXPECTED[exchange_id]}
    sent = [r for r in http.requests if r.method in methods and r.url.split("?")[0] in urls]
    got = [(r.method, r.url.split("?")[0], _clean(r.params, fx["skipKeys"])) for r in sent]
    assert got == [(m, u, _fill(p, ids)) for m, u, p in EXPECTED[exchange_id]]
    roles = [o.role for o in result.orders]
    assert roles[0] is OrderRole.MAIN and not result.duplicate
    if len(EXPECTED[exchange_id]) > 1:  # placed separately: reduce-only, entry first (never a stop without it)
        assert roles[1:] == [OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT]
    await account.close()


def test_every_exchange_has_an_entry_flow_or_is_pending() -> None:
    from storage.exchange_ids import CCXT_EXCHANGES

    assert set(EXPECTED) | PENDING == set(CCXT_EXCHANGES) and not set(EXPECTED) & PENDING
