"""Account-level data: order intents (what the user approved) and the state an account reports."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class IntentKind(StrEnum):
    """What an order intent asks the account to do."""

    OPEN = "open"
    CLOSE = "close"
    SET_STOP = "set_stop"
    SET_TAKE_PROFIT = "set_take_profit"
    SET_LEVERAGE = "set_leverage"
    CANCEL = "cancel"


class Side(StrEnum):
    """Order side."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        """The other side (the side that closes a position opened with this one)."""
        return Side.SELL if self is Side.BUY else Side.BUY


class PositionSide(StrEnum):
    """Direction of an open position."""

    LONG = "long"
    SHORT = "short"

    @property
    def closing_side(self) -> Side:
        """The order side that reduces this position."""
        return Side.SELL if self is PositionSide.LONG else Side.BUY

    @property
    def opening_side(self) -> Side:
        """The order side that opens or adds to this position."""
        return Side.BUY if self is PositionSide.LONG else Side.SELL


class OrderType(StrEnum):
    """Order type of the main order of an intent."""

    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(StrEnum):
    """Unified order status."""

    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class OrderRole(StrEnum):
    """Why an order exists; one intent may produce several (entry plus its stop and target)."""

    MAIN = "main"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"


class OrderIntent(BaseModel):
    """A fully specified, approvable request to change an account; `intent_id` drives idempotency."""

    model_config = ConfigDict(frozen=True)

    intent_id: str = Field(min_length=1, max_length=128, description="Approval token or other unique id")
    account_ref: str = Field(min_length=1, description="Owner/account reference the intent belongs to")
    symbol: str = Field(min_length=1, description="Unified symbol, e.g. BTC/USDT:USDT")
    kind: IntentKind
    side: Side | None = None
    order_type: OrderType = OrderType.MARKET
    amount: Decimal | None = Field(default=None, gt=0, description="Size in base units")
    close_pct: Decimal | None = Field(default=None, gt=0, le=100, description="Percent of position to close")
    price: Decimal | None = Field(default=None, gt=0, description="Limit price")
    stop_price: Decimal | None = Field(default=None, gt=0, description="Stop-loss trigger price")
    take_profit_price: Decimal | None = Field(default=None, gt=0, description="Take-profit trigger price")
    reduce_only: bool = False
    leverage: int | None = Field(default=None, ge=1, le=200)
    order_id: str | None = Field(default=None, description="Target order of a cancel intent")
    expires_after_s: int | None = Field(
        default=None, gt=0, le=30 * 86_400, description="A resting limit entry is cancelled this long after placing"
    )

    @model_validator(mode="after")
    def _check_shape(self) -> OrderIntent:
        kind = self.kind
        if kind is IntentKind.OPEN:
            if self.side is None or self.amount is None:
                raise ValueError("an open intent needs side and amount")
            if self.reduce_only:
                raise ValueError("an open intent cannot be reduce-only")
        if kind is IntentKind.CLOSE and self.amount is not None and self.close_pct is not None:
            raise ValueError("a close intent takes amount or close_pct, not both")
        if self.order_type is OrderType.LIMIT and self.price is None:
            raise ValueError("a limit order needs a price")
        if kind is IntentKind.SET_STOP and self.stop_price is None:
            raise ValueError("set_stop needs stop_price")
        if kind is IntentKind.SET_TAKE_PROFIT and self.take_profit_price is None:
            raise ValueError("set_take_profit needs take_profit_price")
        if kind is IntentKind.SET_LEVERAGE and self.leverage is None:
            raise ValueError("set_leverage needs leverage")
        if kind is IntentKind.CANCEL and self.order_id is None:
            raise ValueError("cancel needs order_id")
        if self.expires_after_s is not None and (kind is not IntentKind.OPEN or self.order_type is not OrderType.LIMIT):
            raise ValueError("only a limit entry can expire")
        return self

    def canonical_json(self) -> str:
        """Canonical JSON (sorted keys, decimals as normalised strings, no nulls) of the intent."""
        data: dict[str, Any] = {}
        for key, value in self.model_dump(mode="python").items():
            if value is None:
                continue
            if isinstance(value, Decimal):
                value = _decimal_text(value)
            elif isinstance(value, StrEnum):
                value = value.value
            data[key] = value
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

    def content_hash(self) -> str:
        """sha256 hex of the canonical JSON; the approval flow stores it to detect tampering."""
        return hashlib.sha256(self.canonical_json().encode("ascii")).hexdigest()

    @property
    def is_close_all(self) -> bool:
        """True when a close intent closes the whole position."""
        return (
            self.kind is IntentKind.CLOSE and self.amount is None and (self.close_pct is None or self.close_pct == 100)
        )


def qty_text(value: Decimal) -> str:
    """A size or amount as people write it: 1.50 and 1.5 alike, never in exponent form ("1E+1")."""
    return format(value.normalize(), "f")


_decimal_text = qty_text  # 1.50 and 1.5 are the same intent


class Balance(BaseModel):
    """Margin balance in the settlement currency (USDT, USDC on deribit)."""

    currency: str = "USDT"
    total: Decimal = Field(description="Account value as reported: wallet balance plus unrealised PnL")
    free: Decimal = Field(description="Margin available for new orders")
    used: Decimal = Field(description="Margin held by positions and open orders")
    unrealised_pnl: Decimal = Decimal(0)
    wallet: Decimal | None = Field(default=None, description="Deposits + realised PnL - fees, when known")


class Position(BaseModel):
    """An open position as reported by the account."""

    symbol: str
    side: PositionSide
    size: Decimal = Field(gt=0, description="Size in base units")
    entry_price: Decimal
    mark_price: Decimal | None = None
    leverage: Decimal | None = None
    liquidation_price: Decimal | None = None
    unrealised_pnl: Decimal | None = None
    realised_pnl: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    margin_mode: str | None = None


class Order(BaseModel):
    """An order as the exchange (or the paper engine) knows it."""

    id: str
    client_order_id: str | None = None
    symbol: str
    side: Side
    type: str
    status: OrderStatus
    amount: Decimal | None = None
    filled: Decimal = Decimal(0)
    price: Decimal | None = None
    average: Decimal | None = None
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    role: OrderRole = OrderRole.MAIN
    fee: Decimal | None = None
    timestamp: datetime | None = None


class PlaceResult(BaseModel):
    """What executing one intent produced; `duplicate` is True when the intent had already run."""

    intent_id: str
    kind: IntentKind
    orders: list[Order] = Field(default_factory=list)
    canceled_order_ids: list[str] = Field(default_factory=list)
    leverage: int | None = None
    duplicate: bool = False
    message: str = ""
