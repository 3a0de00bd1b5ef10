"""Deterministic client order ids derived from an intent (approval) id, valid on every exchange."""

from __future__ import annotations

import hashlib
import re

from tools.exchange.models import OrderRole

PREFIX = "bst"

# Each exchange's field and its documented limits. Hex digits after a letter prefix satisfy all of
# them (okx/blofin: alphanumeric <= 32; binance: [.A-Za-z0-9:/_-] <= 36; bybit <= 36; bitget <= 50;
# deribit label <= 64), so one scheme is used everywhere and the same intent maps to the same id.
CLIENT_ID_MAX_LENGTH: dict[str, int] = {
    "binanceusdm": 36,
    "bybit": 36,
    "okx": 32,
    "bitget": 50,
    "blofin": 32,
    "deribit": 64,
    "paper": 64,
}
# The request field ccxt fills from the unified `clientOrderId` param, for reference and tests.
CLIENT_ID_FIELD: dict[str, str] = {
    "binanceusdm": "newClientOrderId",  # clientAlgoId on the algo (conditional) endpoint
    "bybit": "orderLinkId",
    "okx": "clOrdId",  # algoClOrdId for algo orders
    "bitget": "clientOid",
    "blofin": "clientOrderId",
    "deribit": "label",
}
ID_LENGTH = 32
_VALID = re.compile(r"^[a-z][a-z0-9]{1,63}$")


def client_order_id(intent_id: str, role: OrderRole = OrderRole.MAIN, exchange: str = "paper") -> str:
    """The client order id of the `role` order of intent `intent_id` on `exchange` (stable across runs)."""
    length = min(ID_LENGTH, CLIENT_ID_MAX_LENGTH.get(exchange, ID_LENGTH))
    digest = hashlib.sha256(f"{intent_id}|{role.value}".encode()).hexdigest()
    return PREFIX + digest[: length - len(PREFIX)]


def is_valid_client_id(value: str, exchange: str) -> bool:
    """True when `value` fits `exchange`'s client id rules as Bastion generates them."""
    return bool(_VALID.match(value)) and len(value) <= CLIENT_ID_MAX_LENGTH.get(exchange, ID_LENGTH)
