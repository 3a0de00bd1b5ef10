"""Turning an order intent into ccxt calls: open, reduce-only close, stop / take-profit, leverage, cancel."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import ccxt

from tools.exchange.ccxt_convert import dec
from tools.exchange.client_ids import client_order_id
from tools.exchange.errors import (
    BelowMinimumError,
    InvalidOrderError,
    NoPositionError,
    OrderNotFoundError,
    map_ccxt_error,
)
from tools.exchange.models import (
    IntentKind,
    Order,
    OrderIntent,
    OrderRole,
    OrderType,
    PlaceResult,
    Position,
    PositionSide,
)

if TYPE_CHECKING:
    from tools.exchange.ccxt_account import CcxtAccount


async def execute_intent(account: CcxtAccount, intent: OrderIntent) -> PlaceResult:
    """Run `intent` on `account`; every order carries a client id derived from `intent.intent_id`."""
    await account.ensure_markets()
    account.market(intent.symbol)  # unknown symbols fail before any private call
    handler = _HANDLERS[intent.kind]
    return await handler(account, intent)


def _cid(account: CcxtAccount, intent: OrderIntent, role: OrderRole) -> str:
    return client_order_id(intent.intent_id, role, account.exchange_id)


def to_contracts(account: CcxtAccount, symbol: str, base_amount: Decimal) -> Decimal:
    """Base units to exchange amount units (contracts), truncated to the market's precision."""
    contracts = base_amount / account.contract_size(symbol)
    text = account.exchange.amount_to_precision(symbol, float(contracts))
    rounded = Decimal(text)
    market = account.market(symbol)
    minimum = dec(((market.get("limits") or {}).get("amount") or {}).get("min"))
    if rounded <= 0 or (minimum is not None and rounded < minimum):
        raise BelowMinimumError(
            f"The size {base_amount.normalize():f} is below the minimum order size for {symbol}.",
            exchange=account.exchange_id,
        )
    return rounded


async def _position(account: CcxtAccount, symbol: str) -> Position:
    positions = await account.positions(symbol)
    if not positions:
        raise NoPositionError(f"There is no open position on {symbol}.", exchange=account.exchange_id)
    return positions[0]


async def _open(account: CcxtAccount, intent: OrderIntent) -> PlaceResult:
    assert intent.side is not None and intent.amount is not None
    if intent.leverage is not None:
        await _apply_leverage(account, intent.symbol, intent.leverage)
    amount = to_contracts(account, intent.symbol, intent.amount)
    params: dict[str, Any] = {}
    separate: list[tuple[OrderRole, Decimal]] = []
    for role, price in ((OrderRole.STOP_LOSS, intent.stop_price), (OrderRole.TAKE_PROFIT, intent.take_profit_price)):
        if price is None:
            continue
        if account.profile.attach_sl_tp:
            key = "stopLoss" if role is OrderRole.STOP_LOSS else "takeProfit"
            params[key] = {"triggerPrice": float(account.exchange.price_to_precision(intent.symbol, float(price)))}
        else:
            separate.append((role, price))
    price = intent.price if intent.order_type is OrderType.LIMIT else None
    main, duplicate = await account.submit(
        intent.symbol,
        intent.order_type.value,
        intent.side.value,
        amount,
        price,
        params,
        _cid(account, intent, OrderRole.MAIN),
        OrderRole.MAIN,
    )
    orders = [main]
    for role, trigger in separate:
        order, _ = await _protective(account, intent, role, trigger, intent.side.opposite.value, amount)
        orders.append(order)
    return PlaceResult(intent_id=intent.intent_id, kind=intent.kind, orders=orders, duplicate=duplicate)


async def _protective(
    account: CcxtAccount, intent: OrderIntent, role: OrderRole, trigger: Decimal, side: str, amount: Decimal
) -> tuple[Order, bool]:
    key = "stopLossPrice" if role is OrderRole.STOP_LOSS else "takeProfitPrice"
    params: dict[str, Any] = {
        **account.profile.protective_params,
        key: float(account.exchange.price_to_precision(intent.symbol, float(trigger))),
        "reduceOnly": True,
    }
    return await account.submit(intent.symbol, "market", side, amount, None, params, _cid(account, intent, role), role)


async def _close(account: CcxtAccount, intent: OrderIntent) -> PlaceResult:
    position = await _position(account, intent.symbol)
    if intent.amount is not None:
        base = min(intent.amount, position.size)
    elif intent.close_pct is not None and intent.close_pct < 100:
        base = (position.size * intent.close_pct / 100).quantize(Decimal("1e-12"), rounding=ROUND_DOWN)
    else:
        base = position.size
    amount = to_contracts(account, intent.symbol, base)
    order_type = intent.order_type.value
    price = intent.price if intent.order_type is OrderType.LIMIT else None
    order, duplicate = await account.submit(
        intent.symbol,
        order_type,
        position.side.closing_side.value,
        amount,
        price,
        {"reduceOnly": True},
        _cid(account, intent, OrderRole.MAIN),
        OrderRole.MAIN,
    )
    return PlaceResult(intent_id=intent.intent_id, kind=intent.kind, orders=[order], duplicate=duplicate)


def check_trigger_side(position: Position, role: OrderRole, trigger: Decimal) -> None:
    """A long's stop sits below the reference price and its target above; mirrored for shorts."""
    reference = position.mark_price or position.entry_price
    below = trigger < reference
    wants_below = (role is OrderRole.STOP_LOSS) == (position.side is PositionSide.LONG)
    if below != wants_below:
        what = "stop-loss" if role is OrderRole.STOP_LOSS else "take-profit"
        where = "below" if wants_below else "above"
        raise InvalidOrderError(
            f"A {what} for a {position.side.value} must be {where} the current price ({reference.normalize():f})."
        )


async def _set_protection(account: CcxtAccount, intent: OrderIntent) -> PlaceResult:
    role = OrderRole.STOP_LOSS if intent.kind is IntentKind.SET_STOP else OrderRole.TAKE_PROFIT
    trigger = intent.stop_price if role is OrderRole.STOP_LOSS else intent.take_profit_price
    assert trigger is not None
    position = await _position(account, intent.symbol)
    check_trigger_side(position, role, trigger)
    previous = [o for o in await account.conditional_orders(intent.symbol) if _same_role(o, role, position)]
    amount = to_contracts(account, intent.symbol, position.size)
    # The new order goes in first so the position is never left without a stop while replacing.
    order, duplicate = await _protective(account, intent, role, trigger, position.side.closing_side.value, amount)
    canceled = []
    for old in previous:
        if old.id == order.id or old.client_order_id == order.client_order_id:
            continue
        try:
            await _cancel_order(account, old.id, intent.symbol, conditional=True)
            canceled.append(old.id)
        except OrderNotFoundError:
            continue  # already triggered or gone: nothing to replace
    return PlaceResult(
        intent_id=intent.intent_id, kind=intent.kind, orders=[order], canceled_order_ids=canceled, duplicate=duplicate
    )


def _same_role(order: Order, role: OrderRole, position: Position) -> bool:
    if order.side is not position.side.closing_side or order.trigger_price is None:
        return False
    if order.role is not OrderRole.MAIN:
        return order.role is role
    below = order.trigger_price < position.entry_price
    return below == ((role is OrderRole.STOP_LOSS) == (position.side is PositionSide.LONG))


async def _apply_leverage(account: CcxtAccount, symbol: str, leverage: int) -> None:
    try:
        await account._call("set_leverage", leverage, symbol, dict(account.profile.leverage_params))
    except ccxt.NoChange:
        return  # already at this leverage
    except ccxt.BaseError as exc:
        raise map_ccxt_error(exc, account.exchange_id) from exc


async def _set_leverage(account: CcxtAccount, intent: OrderIntent) -> PlaceResult:
    assert intent.leverage is not None
    await _apply_leverage(account, intent.symbol, intent.leverage)
    return PlaceResult(intent_id=intent.intent_id, kind=intent.kind, leverage=intent.leverage)


async def _cancel_order(account: CcxtAccount, order_id: str, symbol: str, conditional: bool) -> None:
    profile = account.profile
    cond = profile.cancel_conditional_params
    params = dict(profile.conditional_params if cond is None else cond) if conditional else {}
    try:
        await account._call("cancel_order", order_id, symbol, params)
    except ccxt.BaseError as exc:
        raise map_ccxt_error(exc, account.exchange_id) from exc


async def _cancel(account: CcxtAccount, intent: OrderIntent) -> PlaceResult:
    assert intent.order_id is not None
    try:
        await _cancel_order(account, intent.order_id, intent.symbol, conditional=False)
    except OrderNotFoundError:
        if account.profile.conditional_listed_with_regular:
            raise
        # Conditional orders live behind separate endpoints on most exchanges.
        await _cancel_order(account, intent.order_id, intent.symbol, conditional=True)
    return PlaceResult(intent_id=intent.intent_id, kind=intent.kind, canceled_order_ids=[intent.order_id])


_HANDLERS = {
    IntentKind.OPEN: _open,
    IntentKind.CLOSE: _close,
    IntentKind.SET_STOP: _set_protection,
    IntentKind.SET_TAKE_PROFIT: _set_protection,
    IntentKind.SET_LEVERAGE: _set_leverage,
    IntentKind.CANCEL: _cancel,
}
