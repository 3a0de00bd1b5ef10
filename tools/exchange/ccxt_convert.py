"""Conversion of ccxt's unified structures (order, position, balance) into Bastion's models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tools.exchange.models import Balance, Order, OrderRole, OrderStatus, Position, PositionSide, Side

_STATUS = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.CLOSED,
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
    "expired": OrderStatus.EXPIRED,
}


def dec(value: Any) -> Decimal | None:
    """A Decimal from a ccxt number or string (via str, so 0.1 stays 0.1); None for empty values."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _ts(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if isinstance(ms, int | float) and ms else None


def order_role(raw: dict[str, Any]) -> OrderRole:
    """Stop-loss, take-profit or main, from ccxt's parsed order."""
    if raw.get("stopLossPrice") is not None:
        return OrderRole.STOP_LOSS
    if raw.get("takeProfitPrice") is not None:
        return OrderRole.TAKE_PROFIT
    return OrderRole.MAIN


def to_order(
    raw: dict[str, Any],
    *,
    contract_size: Decimal = Decimal(1),
    role: OrderRole | None = None,
    client_order_id: str | None = None,
) -> Order:
    """An Order from a ccxt order dict; amounts are converted from contracts to base units."""
    amount = dec(raw.get("amount"))
    filled = dec(raw.get("filled")) or Decimal(0)
    fee = raw.get("fee") or {}
    status = _STATUS.get(str(raw.get("status") or "open").lower(), OrderStatus.OPEN)
    trigger = dec(raw.get("triggerPrice")) or dec(raw.get("stopLossPrice")) or dec(raw.get("takeProfitPrice"))
    return Order(
        id=str(raw.get("id") or ""),
        client_order_id=raw.get("clientOrderId") or client_order_id,
        symbol=str(raw.get("symbol") or ""),
        side=Side(str(raw.get("side") or "buy").lower()),
        type=str(raw.get("type") or "market"),
        status=status,
        amount=None if amount is None else amount * contract_size,
        filled=filled * contract_size,
        price=dec(raw.get("price")),
        average=dec(raw.get("average")),
        trigger_price=trigger,
        reduce_only=bool(raw.get("reduceOnly")),
        role=role or order_role(raw),
        fee=dec(fee.get("cost")) if isinstance(fee, dict) else None,
        timestamp=_ts(raw.get("timestamp")),
    )


def to_position(raw: dict[str, Any]) -> Position | None:
    """A Position from a ccxt position dict, or None when it is flat."""
    contracts = dec(raw.get("contracts")) or Decimal(0)
    size = contracts * (dec(raw.get("contractSize")) or Decimal(1))
    side = str(raw.get("side") or "").lower()
    if size <= 0 or side not in ("long", "short"):
        return None
    return Position(
        symbol=str(raw["symbol"]),
        side=PositionSide(side),
        size=size,
        entry_price=dec(raw.get("entryPrice")) or Decimal(0),
        mark_price=dec(raw.get("markPrice")),
        leverage=dec(raw.get("leverage")),
        liquidation_price=dec(raw.get("liquidationPrice")),
        unrealised_pnl=dec(raw.get("unrealizedPnl")),
        realised_pnl=dec(raw.get("realizedPnl")),
        stop_loss=_price_or_none(raw.get("stopLossPrice")),
        take_profit=_price_or_none(raw.get("takeProfitPrice")),
        margin_mode=raw.get("marginMode"),
    )


def _price_or_none(value: Any) -> Decimal | None:
    # Several exchanges report "no stop" as 0.
    price = dec(value)
    return price if price else None


def to_balance(raw: dict[str, Any], currency: str, unrealised: Decimal) -> Balance:
    """A Balance in `currency` from ccxt's balance structure."""
    entry = raw.get(currency) or {}
    total = dec(entry.get("total")) or Decimal(0)
    free = dec(entry.get("free"))
    used = dec(entry.get("used"))
    if free is None:
        free = total - (used or Decimal(0))
    if used is None:
        used = total - free
    return Balance(currency=currency, total=total, free=free, used=used, unrealised_pnl=unrealised)
