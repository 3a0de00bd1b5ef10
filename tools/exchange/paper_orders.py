"""How one order intent changes a paper account's state: leverage, cancels, entries, closes, stops and targets.

Pure functions over `PaperState` at the observed prices: `PaperAccount.place` runs them under the account's lock
inside one write transaction, and nothing here reads the database or the market.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from storage.exchange_ids import PAPER
from storage.types import utcnow
from tools.exchange.ccxt_intents import check_trigger_side
from tools.exchange.client_ids import client_order_id
from tools.exchange.errors import OrderNotFoundError
from tools.exchange.models import (
    IntentKind,
    OrderIntent,
    OrderRole,
    OrderStatus,
    OrderType,
    PlaceResult,
    Position,
    PositionSide,
    Side,
)
from tools.exchange.paper_engine import (
    PaperConfig,
    PaperOrder,
    PaperState,
    check_amount,
    execute,
    market_price,
    new_order_id,
    require_position,
)
from tools.exchange.paper_store import to_public_order

QUANTUM = Decimal("1e-12")


class Marks(dict[str, Decimal]):
    """Last prices by symbol, with the market time they were seen at (the newest ticker's)."""

    at: datetime | None = None


def apply_intent(state: PaperState, intent: OrderIntent, marks: Marks, config: PaperConfig) -> PlaceResult:
    """Run `intent` against `state` at `marks` (fills, resting orders, protection); the result the caller stores."""
    kind, last = intent.kind, marks[intent.symbol]
    result = PlaceResult(intent_id=intent.intent_id, kind=kind)
    if kind is IntentKind.SET_LEVERAGE:
        assert intent.leverage is not None
        state.leverage[intent.symbol] = intent.leverage
        result.leverage = intent.leverage
        return result
    if kind is IntentKind.CANCEL:
        return _cancel(state, intent, result)
    if kind in (IntentKind.SET_STOP, IntentKind.SET_TAKE_PROFIT):
        return _protect(state, intent, result, last, config)
    if kind is IntentKind.OPEN:
        assert intent.side is not None and intent.amount is not None
        side, amount, reduce_only = intent.side, intent.amount, False
        _check_entry_protection(intent, intent.price if intent.order_type is OrderType.LIMIT else last)
        if intent.leverage is not None:
            state.leverage[intent.symbol] = intent.leverage
    else:
        pos = require_position(state, intent.symbol)
        side, reduce_only = pos.side.closing_side, True
        if intent.amount is not None:
            amount = min(intent.amount, pos.size)
        elif intent.close_pct is not None and intent.close_pct < 100:
            amount = (pos.size * intent.close_pct / 100).quantize(QUANTUM, rounding=ROUND_DOWN)
        else:
            amount = pos.size
    check_amount(amount, config, intent.symbol)
    order = _new_order(
        state,
        intent,
        OrderRole.MAIN,
        config,
        side=side,
        type=intent.order_type.value,
        amount=amount,
        price=intent.price,
        trigger_price=None,
        reduce_only=reduce_only,
    )
    marketable = intent.order_type is OrderType.MARKET or (
        intent.price is not None and (last <= intent.price if side is Side.BUY else last >= intent.price)
    )
    if marketable:
        price = market_price(last, side, config.slippage)
        if intent.order_type is OrderType.LIMIT and intent.price is not None:
            price = min(price, intent.price) if side is Side.BUY else max(price, intent.price)
        execute(state, order, price, config.taker_fee, marks)
    elif intent.expires_after_s is not None and marks.at is not None:
        order.expires_at = marks.at + timedelta(seconds=intent.expires_after_s)
    result.orders.append(to_public_order(order))
    if kind is IntentKind.OPEN:
        protection = ((OrderRole.STOP_LOSS, intent.stop_price), (OrderRole.TAKE_PROFIT, intent.take_profit_price))
        for role, trigger in protection:
            if trigger is not None:
                protective = _trigger_order(state, intent, role, config, side.opposite, trigger)
                result.orders.append(to_public_order(protective))
    return result


def _new_order(
    state: PaperState, intent: OrderIntent, role: OrderRole, config: PaperConfig, **kw: object
) -> PaperOrder:
    order = PaperOrder(
        id=new_order_id(),
        client_order_id=client_order_id(intent.intent_id, role, PAPER),
        intent_id=intent.intent_id,
        symbol=intent.symbol,
        role=role,
        status=OrderStatus.OPEN,
        leverage=state.leverage.get(intent.symbol, config.default_leverage),
        created_at=utcnow(),
        **kw,  # type: ignore[arg-type]
    )
    state.orders[order.id] = order
    state.touched_orders.add(order.id)
    return order


def _trigger_order(
    state: PaperState, intent: OrderIntent, role: OrderRole, config: PaperConfig, side: Side, trigger: Decimal
) -> PaperOrder:
    """A reduce-only stop or take-profit of the whole position, fired at `trigger`."""
    return _new_order(
        state,
        intent,
        role,
        config,
        side=side,
        type=_trigger_type(role),
        amount=None,
        price=None,
        trigger_price=trigger,
        reduce_only=True,
    )


def _cancel(state: PaperState, intent: OrderIntent, result: PlaceResult) -> PlaceResult:
    order = state.orders.get(intent.order_id or "")
    if order is None or order.status is not OrderStatus.OPEN:
        raise OrderNotFoundError()
    order.status = OrderStatus.CANCELED
    state.touched_orders.add(order.id)
    result.canceled_order_ids = [order.id]
    if order.role is OrderRole.MAIN:
        # A cancelled entry takes its waiting stop and target with it.
        for sibling in state.open_orders(order.symbol):
            if sibling.intent_id == order.intent_id and sibling.reduce_only:
                sibling.status = OrderStatus.CANCELED
                state.touched_orders.add(sibling.id)
                result.canceled_order_ids.append(sibling.id)
    return result


def _protect(
    state: PaperState, intent: OrderIntent, result: PlaceResult, last: Decimal, config: PaperConfig
) -> PlaceResult:
    role = OrderRole.STOP_LOSS if intent.kind is IntentKind.SET_STOP else OrderRole.TAKE_PROFIT
    trigger = intent.stop_price if role is OrderRole.STOP_LOSS else intent.take_profit_price
    assert trigger is not None
    pos = require_position(state, intent.symbol)
    public = Position(symbol=pos.symbol, side=pos.side, size=pos.size, entry_price=pos.entry, mark_price=last)
    check_trigger_side(public, role, trigger)
    for old in state.open_orders(intent.symbol):
        if old.role is role:
            old.status = OrderStatus.CANCELED
            state.touched_orders.add(old.id)
            result.canceled_order_ids.append(old.id)
    order = _trigger_order(state, intent, role, config, pos.side.closing_side, trigger)
    result.orders.append(to_public_order(order))
    return result


def _check_entry_protection(intent: OrderIntent, reference: Decimal | None) -> None:
    """An entry's stop and target must sit on their side of where it fills, or they would fire at once."""
    assert intent.side is not None and reference is not None
    side = PositionSide.LONG if intent.side is Side.BUY else PositionSide.SHORT
    public = Position(symbol=intent.symbol, side=side, size=Decimal(1), entry_price=reference, mark_price=reference)
    if intent.stop_price is not None:
        check_trigger_side(public, OrderRole.STOP_LOSS, intent.stop_price)
    if intent.take_profit_price is not None:
        check_trigger_side(public, OrderRole.TAKE_PROFIT, intent.take_profit_price)


def _trigger_type(role: OrderRole) -> str:
    return "stop_market" if role is OrderRole.STOP_LOSS else "take_profit_market"
