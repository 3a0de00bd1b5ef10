"""Intent validation and hashing, client order ids, error mapping, the factory."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest
from pydantic import ValidationError

from storage.exchange_ids import CCXT_EXCHANGES, SUPPORTED_EXCHANGES
from tests.exchange.fakes import FakeMarket
from tools.exchange.base import Account
from tools.exchange.ccxt_account import CcxtAccount
from tools.exchange.client_ids import CLIENT_ID_MAX_LENGTH, client_order_id, is_valid_client_id
from tools.exchange.errors import (
    AuthenticationFailedError,
    ExchangeUnavailableError,
    InsufficientFundsError,
    InvalidOrderError,
    RateLimitedError,
    UnsupportedError,
    map_ccxt_error,
)
from tools.exchange.factory import make_account
from tools.exchange.models import IntentKind, OrderIntent, OrderRole
from tools.exchange.paper import PaperAccount


def _close(**kw: object) -> OrderIntent:
    base: dict[str, object] = {"intent_id": "tok", "account_ref": "u", "symbol": "BTC/USDT:USDT", "kind": "close"}
    return OrderIntent(**(base | kw))  # type: ignore[arg-type]


def test_content_hash_is_canonical() -> None:
    a = _close(close_pct=Decimal("50.0"))
    b = OrderIntent.model_validate_json(a.model_dump_json())
    assert a.content_hash() == b.content_hash() == _close(close_pct=Decimal(50)).content_hash()
    assert a.content_hash() != _close(close_pct=Decimal(51)).content_hash()
    assert '"close_pct":"50"' in a.canonical_json()


def test_intent_shape_is_validated() -> None:
    with pytest.raises(ValidationError):
        OrderIntent(intent_id="t", account_ref="u", symbol="BTC/USDT:USDT", kind=IntentKind.OPEN)
    with pytest.raises(ValidationError):
        _close(close_pct=Decimal(150))
    with pytest.raises(ValidationError):
        _close(kind="set_stop")
    with pytest.raises(ValidationError):
        _close(amount=Decimal(1), close_pct=Decimal(10))


@pytest.mark.parametrize("exchange_id", CCXT_EXCHANGES)
def test_client_ids_are_deterministic_and_valid(exchange_id: str) -> None:
    ids = {client_order_id("approval-1", role, exchange_id) for role in OrderRole}
    assert len(ids) == len(OrderRole)  # entry, stop and target of one intent differ
    for cid in ids:
        assert is_valid_client_id(cid, exchange_id) and cid.isalnum()
        assert len(cid) <= min(32, CLIENT_ID_MAX_LENGTH[exchange_id])
    assert client_order_id("approval-1", OrderRole.MAIN, exchange_id) == client_order_id("approval-1")
    assert client_order_id("approval-2") != client_order_id("approval-1")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ccxt.InsufficientFunds("x"), InsufficientFundsError),
        (ccxt.InvalidOrder("x"), InvalidOrderError),
        (ccxt.PermissionDenied("x"), AuthenticationFailedError),
        (ccxt.RateLimitExceeded("x"), RateLimitedError),
        (ccxt.DDoSProtection("x"), RateLimitedError),
        (ccxt.OnMaintenance("x"), ExchangeUnavailableError),
        (ccxt.RequestTimeout("x"), ExchangeUnavailableError),
    ],
)
def test_ccxt_errors_map_to_domain_errors(exc: Exception, expected: type) -> None:
    mapped = map_ccxt_error(exc, "bybit")
    assert type(mapped) is expected and mapped.user_message and mapped.exchange == "bybit"


async def test_factory_builds_every_supported_exchange(tmp_path: object) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    engine = create_async_engine("sqlite+aiosqlite://")
    for exchange_id in SUPPORTED_EXCHANGES:
        account = make_account(
            exchange_id,
            "a1",
            market=FakeMarket(BTC=1),
            sessions=async_sessionmaker(engine),
            credentials=lambda: {"apiKey": "k", "secret": "s"},
        )
        assert isinstance(account, Account)
        assert isinstance(account, PaperAccount if exchange_id == "paper" else CcxtAccount)
        await account.close()
    with pytest.raises(UnsupportedError):
        make_account("bitunix", "a1")
    await engine.dispose()
