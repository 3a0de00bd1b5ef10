"""Pure paper-trading engine: fills, netting, triggers, liquidation and PnL on an in-memory state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from storage.types import utcnow
from tools.exchange.errors import BelowMinimumError, InsufficientFundsError, NoPositionError
from tools.exchange.models import OrderRole, OrderStatus, PositionSide, Side

ZERO = Decimal(0)
DUST = Decimal("1e-12")


@dataclass(frozen=True)
class PaperConfig:
    """Fees and slippage are fractions (0.0005 = 0.05%); maintenance margin is a fraction of notional."""

    initial_balance: Decimal = Decimal(10_000)
    currency: str = "USDT"
    taker_fee: Decimal = Decimal("0.0005")
    maker_fee: Decimal = Decimal("0.0002")
    slippage: Decimal = Decimal("0.0005")
    maintenance_margin: Decimal = Decimal("0.005")
    default_leverage: int = 1
    min_amount: Decimal = Decimal("1e-8")


@dataclass
class PaperPosition:
    """Open position (one-way mode)."""

    symbol: str
    side: PositionSide
    size: Decimal
    entry: Decimal
    leverage: int
    realised: Decimal = ZERO
    funded_at: datetime | None = None  # the last funding mark settled; None = just opened, not yet stamped


@dataclass
class PaperOrder:
    """Paper order; `amount` None on a protective order means "the whole position"."""

    id: str
    client_order_id: str
    intent_id: str
    symbol: str
    side: Side
    type: str  # market | limit | stop_market | take_profit_market
    role: OrderRole
    status: OrderStatus
    amount: Decimal | None
    price: Decimal | None
    trigger_price: Decimal | None
    reduce_only: bool
    leverage: int
    created_at: datetime
    filled: Decimal = ZERO
    average: Decimal | None = None
    fee: Decimal = ZERO
    expires_at: datetime | None = None  # a resting limit entry still open then is cancelled as expired


@dataclass
class PaperFill:
    """One execution."""

    order_id: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    fee: Decimal
    realised: Decimal
    liquidation: bool = False


@dataclass
class PaperFunding:
    """One funding payment of a position at a funding mark; `amount` > 0 received, < 0 paid."""

    symbol: str
    at: datetime
    side: PositionSide
    size: Decimal
    mark: Decimal
    rate: Decimal
    amount: Decimal


@dataclass
class PaperState:
    """Everything the engine needs about one account; `touched` / `fills` say what to persist."""

    account_id: str
    wallet: Decimal
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO  # funding received minus paid, in the wallet
    market_source: str | None = None
    leverage: dict[str, int] = field(default_factory=dict)
    positions: dict[str, PaperPosition] = field(default_factory=dict)
    orders: dict[str, PaperOrder] = field(default_factory=dict)
    fills: list[PaperFill] = field(default_factory=list)
    touched_orders: set[str] = field(default_factory=set)
    touched_positions: set[str] = field(default_factory=set)
    payments: list[PaperFunding] = field(default_factory=list)  # funding booked, not yet stored
    expired: list[str] = field(default_factory=list)  # ids of orders cancelled as expired, not yet reported

    def open_orders(self, symbol: str | None = None) -> list[PaperOrder]:
        """Open orders, oldest first."""
        return [
            o for o in self.orders.values() if o.status is OrderStatus.OPEN and (symbol is None or o.symbol == symbol)
        ]


MONEY_QUANTUM = Decimal("1e-10")


def new_order_id() -> str:
    """A fresh paper order id."""
    return "P" + uuid.uuid4().hex[:20]


def liquidation_price(pos: PaperPosition, mmr: Decimal) -> Decimal:
    """Isolated-margin liquidation price: the loss eats the initial margin down to maintenance."""
    inv = Decimal(1) / Decimal(pos.leverage)
    if pos.side is PositionSide.LONG:
        return max(ZERO, pos.entry * (1 - inv + mmr))
    return pos.entry * (1 + inv - mmr)


def unrealised(pos: PaperPosition, mark: Decimal) -> Decimal:
    """PnL of the open size at `mark`."""
    diff = mark - pos.entry if pos.side is PositionSide.LONG else pos.entry - mark
    return diff * pos.size


def used_margin(state: PaperState) -> Decimal:
    """Initial margin held by positions and by open orders that can open exposure."""
    held = sum((p.entry * p.size / p.leverage for p in state.positions.values()), ZERO)
    for order in state.open_orders():
        if order.type == "limit" and not order.reduce_only and order.amount is not None and order.price:
            held += order.amount * order.price / order.leverage
    return held


def free_margin(state: PaperState, marks: dict[str, Decimal]) -> Decimal:
    """Wallet + unrealised PnL - margin in use."""
    pnl = sum((unrealised(p, marks.get(s, p.entry)) for s, p in state.positions.items()), ZERO)
    return state.wallet + pnl - used_margin(state)


def _book(state: PaperState, fill: PaperFill) -> None:
    state.wallet += fill.realised - fill.fee
    state.realised += fill.realised
    state.fees += fill.fee
    state.fills.append(fill)


def execute(
    state: PaperState,
    order: PaperOrder,
    price: Decimal,
    fee_rate: Decimal,
    marks: dict[str, Decimal],
    *,
    liquidation: bool = False,
) -> PaperFill | None:
    """Fill `order` at `price`: reduce the opposite position first, open the rest; None if nothing to do."""
    pos = state.positions.get(order.symbol)
    opposite = pos is not None and pos.side.closing_side is order.side
    want = order.amount if order.amount is not None else (pos.size if opposite and pos else ZERO)
    closing = min(want, pos.size) if opposite and pos else ZERO
    opening = ZERO if order.reduce_only else want - closing
    amount = closing + opening
    if amount <= 0:
        order.status = OrderStatus.CANCELED
        state.touched_orders.add(order.id)
        return None
    # Money is kept at a fixed quantum so wallet = initial + realised - fees holds exactly, whatever the prices.
    fee = (amount * price * fee_rate).quantize(MONEY_QUANTUM)
    if opening > 0:
        lev = order.leverage
        need = opening * price / lev + fee
        if need > free_margin(state, marks) + (closing * price / lev):
            raise InsufficientFundsError(
                f"Insufficient funds: this order needs {need:.2f} {state_currency(state)} of margin."
            )
    realised = ZERO
    if closing > 0 and pos is not None:
        per_unit = price - pos.entry if pos.side is PositionSide.LONG else pos.entry - price
        realised = (per_unit * closing).quantize(MONEY_QUANTUM)
        pos.size -= closing
        pos.realised += realised
        if pos.size <= DUST:
            del state.positions[order.symbol]
            _cancel_protection(state, order.symbol)
        state.touched_positions.add(order.symbol)
    if opening > 0:
        current = state.positions.get(order.symbol)
        side = PositionSide.LONG if order.side is Side.BUY else PositionSide.SHORT
        if current is None:
            state.positions[order.symbol] = PaperPosition(order.symbol, side, opening, price, order.leverage)
        else:
            total = current.size + opening
            current.entry = (current.entry * current.size + price * opening) / total
            current.size = total
        state.touched_positions.add(order.symbol)
    fill = PaperFill(order.id, order.symbol, order.side, amount, price, fee, realised, liquidation)
    _book(state, fill)
    prev = order.filled
    order.filled = prev + amount
    order.average = price if order.average is None else (order.average * prev + price * amount) / order.filled
    order.fee += fee
    order.status = OrderStatus.CLOSED
    state.touched_orders.add(order.id)
    return fill


def state_currency(_state: PaperState) -> str:
    """Settlement currency label used in messages."""
    return "USDT"


def _cancel_protection(state: PaperState, symbol: str) -> None:
    # A flat position leaves its stop and target orphaned: cancel them like an exchange's OCO would.
    for order in state.open_orders(symbol):
        if order.reduce_only:
            order.status = OrderStatus.CANCELED
            state.touched_orders.add(order.id)


def market_price(last: Decimal, side: Side, slippage: Decimal) -> Decimal:
    """Last price moved against the taker by the slippage fraction."""
    return last * (1 + slippage) if side is Side.BUY else last * (1 - slippage)


def _triggered(order: PaperOrder, last: Decimal) -> bool:
    assert order.trigger_price is not None
    sells = order.side is Side.SELL
    if order.role is OrderRole.STOP_LOSS:
        return last <= order.trigger_price if sells else last >= order.trigger_price
    return last >= order.trigger_price if sells else last <= order.trigger_price


def _entry_waiting(state: PaperState, protective: PaperOrder) -> bool:
    return any(
        o.intent_id == protective.intent_id and o.role is OrderRole.MAIN for o in state.open_orders(protective.symbol)
    )


def evaluate(state: PaperState, symbol: str, last: Decimal, config: PaperConfig) -> list[PaperFill]:
    """Process resting orders and liquidation of `symbol` against the observed last price."""
    marks = {symbol: last}
    fills: list[PaperFill] = []
    for order in state.open_orders(symbol):
        if order.status is not OrderStatus.OPEN:
            continue  # canceled as a side effect of an earlier fill in this loop
        if order.trigger_price is not None:
            if order.symbol not in state.positions and _entry_waiting(state, order):
                continue  # the stop / target of a resting limit entry waits for the entry to fill
            if _triggered(order, last):
                price = market_price(last, order.side, config.slippage)
                fill = execute(state, order, price, config.taker_fee, marks)
                fills += [fill] if fill else []
        elif order.type == "limit" and order.price is not None:
            crossed = last <= order.price if order.side is Side.BUY else last >= order.price
            if crossed:
                try:
                    fill = execute(state, order, order.price, config.maker_fee, marks)
                except InsufficientFundsError:
                    order.status = OrderStatus.CANCELED
                    state.touched_orders.add(order.id)
                    continue
                fills += [fill] if fill else []
    pos = state.positions.get(symbol)
    if pos is not None:
        liq = liquidation_price(pos, config.maintenance_margin)
        hit = last <= liq if pos.side is PositionSide.LONG else last >= liq
        if hit:
            order = PaperOrder(
                new_order_id(),
                "liq" + uuid.uuid4().hex[:16],
                "liquidation",
                symbol,
                pos.side.closing_side,
                "market",
                OrderRole.MAIN,
                OrderStatus.OPEN,
                pos.size,
                None,
                None,
                True,
                pos.leverage,
                created_at=utcnow(),
            )
            state.orders[order.id] = order
            fill = execute(state, order, liq, config.taker_fee, marks, liquidation=True)
            fills += [fill] if fill else []
    return fills


def require_position(state: PaperState, symbol: str) -> PaperPosition:
    """The open position on `symbol` or a NoPositionError."""
    pos = state.positions.get(symbol)
    if pos is None:
        raise NoPositionError(f"There is no open paper position on {symbol}.")
    return pos


def check_amount(amount: Decimal, config: PaperConfig, symbol: str) -> None:
    """Refuse dust orders."""
    if amount < config.min_amount:
        raise BelowMinimumError(f"The size {amount:f} is below the minimum order size for {symbol}.")
