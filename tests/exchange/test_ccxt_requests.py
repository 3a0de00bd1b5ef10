"""ccxt's real request building and response parsing, offline, for every supported exchange."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from storage.exchange_ids import CCXT_EXCHANGES
from tests.exchange.fakehttp import FIXTURES, Captured, offline_exchange
from tools.exchange.ccxt_account import CcxtAccount
from tools.exchange.client_ids import client_order_id, is_valid_client_id
from tools.exchange.models import IntentKind, OrderIntent, OrderRole, OrderStatus

RECORDED = [e for e in CCXT_EXCHANGES if (FIXTURES / f"{e}.json").exists()]
CREDS = {"apiKey": "KEY-abc123", "secret": "SECRET-xyz789-do-not-log", "password": "PASS-phrase-1"}


# Recordings still to write; this set must shrink, never silently drift.
PENDING: set[str] = set()


def test_recordings_cover_every_exchange_not_pending() -> None:
    assert set(RECORDED) == set(CCXT_EXCHANGES) - PENDING


def _account(exchange_id: str) -> tuple[CcxtAccount, Any, dict[str, Any]]:
    ex, http, fx = offline_exchange(exchange_id)
    return CcxtAccount(exchange_id, lambda: CREDS, exchange=ex), http, fx


def _sent(http: Any, spec: dict[str, Any]) -> Captured:
    base = spec["url"]
    hits = [r for r in http.requests if r.method == spec["method"] and r.url.split("?")[0] == base]
    assert hits, f"no {spec['method']} {base} sent; sent: {[(r.method, r.url) for r in http.requests]}"
    return hits[-1]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _expected(spec: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    # Placeholders (CLOSE_CID, ...) may sit inside list bodies (okx batch-orders, cancel-algos).
    return _fill(spec["output"], ids)


def _clean(params: dict[str, Any], skip: list[str]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in skip}


@pytest.mark.parametrize("exchange_id", RECORDED)
async def test_reduce_only_close_sends_exact_parameters(exchange_id: str) -> None:
    account, http, fx = _account(exchange_id)
    intent = OrderIntent(
        intent_id="approval-close-1",
        account_ref="user-1",
        symbol=fx["symbol"],
        kind=IntentKind.CLOSE,
        close_pct=Decimal(50),
    )
    result = await account.place(intent)
    cid = client_order_id("approval-close-1", OrderRole.MAIN, exchange_id)
    assert is_valid_client_id(cid, exchange_id)
    spec = fx["requests"]["close"]
    sent = _sent(http, spec)
    assert _clean(sent.params, fx["skipKeys"]) == _expected(spec, {"CLOSE_CID": cid})
    # One order creation only, and the result is ccxt's parse of the recorded reply.
    assert len([r for r in http.requests if r.url.split("?")[0] == spec["url"] and r.method == spec["method"]]) == 1
    assert len(result.orders) == 1 and result.orders[0].reduce_only is not None
    assert result.orders[0].id == fx["expected"]["closeOrderId"]
    assert not result.duplicate
    await account.close()


@pytest.mark.parametrize("exchange_id", RECORDED)
async def test_set_stop_sends_exact_parameters_and_replaces_old_stop(exchange_id: str) -> None:
    account, http, fx = _account(exchange_id)
    intent = OrderIntent(
        intent_id="approval-stop-1",
        account_ref="user-1",
        symbol=fx["symbol"],
        kind=IntentKind.SET_STOP,
        stop_price=Decimal(fx["expected"]["newStop"]),
    )
    result = await account.place(intent)
    cid = client_order_id("approval-stop-1", OrderRole.STOP_LOSS, exchange_id)
    spec = fx["requests"]["stopLoss"]
    sent = _sent(http, spec)
    assert _clean(sent.params, fx["skipKeys"]) == _expected(spec, {"STOP_CID": cid})
    assert result.orders[0].role is OrderRole.STOP_LOSS
    if "stopLookup" in fx["requests"]:
        lookup = fx["requests"]["stopLookup"]
        assert _clean(_sent(http, lookup).params, fx["skipKeys"]) == _expected(lookup, {"STOP_CID": cid})
    assert result.orders[0].status is OrderStatus.OPEN
    cancel = fx["requests"]["cancelPrevious"]
    assert _clean(_sent(http, cancel).params, fx["skipKeys"]) == _expected(cancel, {})
    assert result.canceled_order_ids == [fx["expected"]["oldStopId"]]
    # The replacement is created before the old stop is canceled: never unprotected.
    order_of = [(r.method, r.url.split("?")[0]) for r in http.requests]
    assert order_of.index((spec["method"], spec["url"])) < order_of.index((cancel["method"], cancel["url"]))
    await account.close()


@pytest.mark.parametrize("exchange_id", RECORDED)
async def test_positions_and_balance_parse_recorded_responses(exchange_id: str) -> None:
    account, _http, fx = _account(exchange_id)
    positions = await account.positions(fx["symbol"])
    assert len(positions) == 1
    pos, want = positions[0], fx["expected"]["position"]
    assert pos.symbol == fx["symbol"]
    assert pos.side.value == want["side"]
    assert pos.size == Decimal(want["size"])
    assert pos.entry_price == Decimal(want["entry_price"])
    assert pos.liquidation_price == Decimal(want["liquidation_price"])
    assert pos.stop_loss == Decimal(want["stop_loss"])
    balance = await account.balance()
    assert balance.currency == fx["expected"]["balance"]["currency"]
    assert balance.total == Decimal(fx["expected"]["balance"]["total"])
    await account.close()


@pytest.mark.parametrize("exchange_id", RECORDED)
async def test_keys_exist_on_the_exchange_object_only_during_a_call(exchange_id: str) -> None:
    calls = 0

    async def provider() -> dict[str, str]:
        nonlocal calls
        calls += 1
        return CREDS

    ex, _http, fx = offline_exchange(exchange_id)
    account = CcxtAccount(exchange_id, provider, exchange=ex)
    assert calls == 0  # nothing decrypted at construction
    await account.positions(fx["symbol"])
    assert calls >= 1
    assert not ex.apiKey and not ex.secret and not ex.password
    await account.close()
