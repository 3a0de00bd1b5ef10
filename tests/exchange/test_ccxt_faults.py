"""Faults around order creation: timeouts reconcile by client id, refusals map to clear errors."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from storage.retry import RetryPolicy
from tests.exchange.fakehttp import HttpError, load_fixture, offline_exchange
from tools.exchange.ccxt_account import CcxtAccount
from tools.exchange.client_ids import client_order_id
from tools.exchange.errors import (
    AuthenticationFailedError,
    InsufficientFundsError,
    OrderStatusUnknownError,
    RateLimitedError,
)
from tools.exchange.models import IntentKind, OrderIntent, OrderRole

SECRET = "SECRET-xyz789-do-not-log"
CREDS = {"apiKey": "KEY-abc123-never-shown", "secret": SECRET}
ORDER_URL = "/fapi/v1/order"


class Sleeps:
    """Records backoff delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _setup() -> tuple[CcxtAccount, Any, dict[str, Any], Sleeps]:
    ex, http, fx = offline_exchange("binanceusdm")
    sleeps = Sleeps()
    account = CcxtAccount("binanceusdm", lambda: CREDS, exchange=ex, sleep=sleeps, retry=RetryPolicy(4, 0.5))
    return account, http, fx, sleeps


def _close_intent(intent_id: str = "approval-77") -> OrderIntent:
    return OrderIntent(
        intent_id=intent_id,
        account_ref="user-1",
        symbol="BTC/USDT:USDT",
        kind=IntentKind.CLOSE,
        close_pct=Decimal(100),
    )


def _posts(http: Any) -> list[Any]:
    return [r for r in http.find("POST", ORDER_URL) if "algoOrder" not in r.url]


def _lookups(http: Any) -> list[Any]:
    return [r for r in http.find("GET", ORDER_URL + "?") if "origClientOrderId" in r.params]


async def test_timeout_then_found_by_client_id_gives_exactly_one_order() -> None:
    account, http, fx, _ = _setup()
    cid = client_order_id("approval-77", OrderRole.MAIN, "binanceusdm")
    filled = {**fx["filledOrder"], "clientOrderId": cid, "origQty": "0.015", "executedQty": "0.015"}
    http.add("POST", ORDER_URL, ccxt.RequestTimeout("binanceusdm POST timed out (10000 ms)"))
    http.add("GET", ORDER_URL + "?", HttpError(400, fx["errors"]["notFound"]["body"]), filled)
    result = await account.place(_close_intent())
    assert len(_posts(http)) == 1  # never re-sent: the first attempt had gone through
    assert [r.params["origClientOrderId"] for r in _lookups(http)] == [cid, cid]
    # The lookup came right after the timeout, before anything else.
    kinds = [(r.method, r.url.split("?")[0].rsplit("/", 1)[-1]) for r in http.requests]
    assert kinds[-2:] == [("POST", "order"), ("GET", "order")]
    assert result.duplicate is True
    assert result.orders[0].client_order_id == cid
    assert result.orders[0].filled == Decimal("0.015")


async def test_timeout_and_not_found_places_again_with_the_same_client_id() -> None:
    account, http, fx, _ = _setup()
    http.add("POST", ORDER_URL, ccxt.RequestTimeout("timed out"), fx["filledOrder"])
    result = await account.place(_close_intent())
    posts = _posts(http)
    assert len(posts) == 2
    assert posts[0].params["newClientOrderId"] == posts[1].params["newClientOrderId"]
    assert len(_lookups(http)) == 2  # pre-check, then the reconcile lookup between the two posts
    assert result.orders[0].id == "4123456789"


async def test_timeout_and_exchange_unreachable_reports_unknown_status_without_resending() -> None:
    account, http, _fx, _ = _setup()
    # Pre-check answers "not found", then create times out and every later lookup fails too.
    not_found = HttpError(400, {"code": -2013, "msg": "Order does not exist."})
    http.add("GET", ORDER_URL + "?", not_found, ccxt.NetworkError("connection reset"))
    http.add("POST", ORDER_URL, ccxt.RequestTimeout("timed out"))
    with pytest.raises(OrderStatusUnknownError) as info:
        await account.place(_close_intent())
    assert len(_posts(http)) == 1
    assert "before trying again" in info.value.user_message
    assert len(_lookups(http)) == 1 + 4  # pre-check + the reconcile lookup with its read retries


async def test_rate_limited_create_backs_off_then_succeeds() -> None:
    account, http, fx, sleeps = _setup()
    limit = HttpError(429, fx["errors"]["rateLimit"]["body"])
    http.add("POST", ORDER_URL, limit, limit, fx["filledOrder"])
    result = await account.place(_close_intent())
    assert len(_posts(http)) == 3
    assert sleeps.delays == [0.5, 1.0]
    assert result.orders[0].id == "4123456789"


async def test_rate_limited_reads_back_off_then_succeed() -> None:
    account, http, fx, sleeps = _setup()
    position = next(r["httpResponse"] for r in fx["httpResponses"] if r["url"] == "/fapi/v3/positionRisk")
    limit = HttpError(429, fx["errors"]["rateLimit"]["body"])
    http.add("GET", "/fapi/v3/positionRisk", limit, limit, position)
    positions = await account.positions("BTC/USDT:USDT")
    assert len(positions) == 1
    assert sleeps.delays == [0.5, 1.0]


async def test_rate_limit_that_never_clears_is_a_clear_error() -> None:
    account, http, fx, sleeps = _setup()
    http.add("GET", "/fapi/v3/positionRisk", HttpError(429, fx["errors"]["rateLimit"]["body"]))
    with pytest.raises(RateLimitedError) as info:
        await account.positions("BTC/USDT:USDT")
    assert len(sleeps.delays) == 3
    assert "rate limiting" in info.value.user_message


async def test_insufficient_funds_is_a_clear_error_and_nothing_is_filled() -> None:
    account, http, fx, sleeps = _setup()
    http.add("POST", ORDER_URL, HttpError(400, fx["errors"]["insufficientFunds"]["body"]))
    intent = OrderIntent(
        intent_id="approval-open-9",
        account_ref="user-1",
        symbol="BTC/USDT:USDT",
        kind=IntentKind.OPEN,
        side="buy",
        amount=Decimal("5"),
    )
    with pytest.raises(InsufficientFundsError) as info:
        await account.place(intent)
    assert "Insufficient funds" in info.value.user_message
    assert len(_posts(http)) == 1 and sleeps.delays == []  # a refusal is final: no retry


async def test_duplicate_client_id_is_already_placed_and_fetched() -> None:
    account, http, fx, _ = _setup()
    cid = client_order_id("approval-77", OrderRole.MAIN, "binanceusdm")
    existing = {**fx["filledOrder"], "clientOrderId": cid}
    http.add("POST", ORDER_URL, HttpError(400, fx["errors"]["duplicate"]["body"]))
    http.add("GET", ORDER_URL + "?", HttpError(400, fx["errors"]["notFound"]["body"]), existing)
    result = await account.place(_close_intent())
    assert result.duplicate and result.orders[0].client_order_id == cid
    assert len(_posts(http)) == 1


async def test_same_intent_twice_places_one_order() -> None:
    account, http, fx, _ = _setup()
    cid = client_order_id("approval-77", OrderRole.MAIN, "binanceusdm")
    existing = {**fx["filledOrder"], "clientOrderId": cid}
    http.add("GET", ORDER_URL + "?", HttpError(400, fx["errors"]["notFound"]["body"]), existing)
    first = await account.place(_close_intent())
    second = await account.place(_close_intent())
    assert len(_posts(http)) == 1
    assert not first.duplicate and second.duplicate
    assert second.orders[0].id == first.orders[0].id


async def test_authentication_error_is_clear_and_never_logs_credentials(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account, http, fx, sleeps = _setup()
    http.add("GET", "/fapi/v3/positionRisk", HttpError(401, fx["errors"]["authentication"]["body"]))
    with pytest.raises(AuthenticationFailedError) as info:
        await account.place(_close_intent())
    assert "API credentials" in info.value.user_message
    assert sleeps.delays == []
    text = caplog.text + repr(info.value) + str(info.value) + info.value.user_message
    assert SECRET not in text and CREDS["apiKey"] not in text
    assert caplog.records, "the failure should be logged (without secrets)"
    assert not account.exchange.secret and not account.exchange.apiKey


async def test_broken_credentials_provider_is_an_authentication_error(caplog: pytest.LogCaptureFixture) -> None:
    ex, _http, _fx = offline_exchange("binanceusdm")

    def provider() -> dict[str, str]:
        raise ValueError(f"cannot decrypt token {SECRET}")

    account = CcxtAccount("binanceusdm", provider, exchange=ex)
    with pytest.raises(AuthenticationFailedError) as info:
        await account.positions()
    assert info.value.__cause__ is None and info.value.__context__ is not None
    assert SECRET not in caplog.text and SECRET not in str(info.value)


def _fill_cid(value: Any, cid: str) -> Any:
    if value == "CID":
        return cid
    if isinstance(value, list):
        return [_fill_cid(v, cid) for v in value]
    if isinstance(value, dict):
        return {k: _fill_cid(v, cid) for k, v in value.items()}
    return value


FAULT_EXCHANGES = [e for e in ("okx", "bitget", "blofin", "deribit") if "faultLookup" in load_fixture(e)]


@pytest.mark.parametrize("exchange_id", FAULT_EXCHANGES)
async def test_timeout_then_found_by_client_id_gives_exactly_one_order_on(exchange_id: str) -> None:
    ex, http, fx = offline_exchange(exchange_id)
    creds = {**CREDS, "password": "PASS-phrase-1"}  # okx, bitget and blofin need the API passphrase
    account = CcxtAccount(exchange_id, lambda: creds, exchange=ex, sleep=Sleeps(), retry=RetryPolicy(4, 0.5))
    spec = fx["faultLookup"]
    cid = client_order_id("approval-77", OrderRole.MAIN, exchange_id)
    create = spec["create"]
    http.add(create["method"], create["url"], ccxt.RequestTimeout(f"{exchange_id} timed out (10000 ms)"))
    for lookup in spec["lookups"]:
        responses = [
            HttpError(r["status"], r["body"]) if "status" in r else _fill_cid(r["body"], cid)
            for r in lookup["responses"]
        ]
        http.add(lookup["method"], lookup["url"], *responses)
    intent = _close_intent().model_copy(update={"symbol": fx["symbol"]})
    result = await account.place(intent)
    creates = [r for r in http.requests if r.method == create["method"] and r.url.split("?")[0].endswith(create["url"])]
    assert len(creates) == 1  # never re-sent: the first attempt had gone through
    looked = [r for lk in spec["lookups"] for r in http.find(lk["method"], lk["url"])]
    assert len(looked) == 2  # the pre-check (not there yet), then the reconcile that finds it
    if spec["lookupParam"]:
        assert all(r.params[spec["lookupParam"]] == cid for r in looked)
    assert result.duplicate is True
    assert result.orders[0].client_order_id == cid
    assert result.orders[0].filled == Decimal(spec["filled"])
    await account.close()
