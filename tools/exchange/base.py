"""The account contract every exchange connection (ccxt or paper) implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tools.exchange.models import Balance, Order, OrderIntent, PlaceResult, Position


@runtime_checkable
class Account(Protocol):
    """One trading account on one exchange; every method may raise `tools.exchange.errors.AccountError`."""

    exchange_id: str
    simulated: bool

    async def balance(self) -> Balance:
        """Margin balance in the settlement currency."""
        ...

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """Open positions (all, or the one on `symbol`) with their attached stop and take-profit."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders, conditional (stop / take-profit) orders included."""
        ...

    async def place(self, intent: OrderIntent) -> PlaceResult:
        """Execute an approved intent exactly once; running the same intent again returns the first result."""
        ...

    async def find_intent(self, intent: OrderIntent) -> PlaceResult | None:
        """What `intent` already did on the account, found by its client order ids; None when it left no order.

        Raises `AccountError` (e.g. `OrderStatusUnknownError`) when the account cannot be asked right now: the
        caller must then treat the outcome as unknown, never as "not placed".
        """
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
