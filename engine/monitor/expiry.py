"""Limit entries that expired unfilled: cancelled at market time by the paper account, told to their owner once.

The sweep runs as a scheduled job (the leader's): each paper account processes its market time (which cancels the
expired entries with their waiting stop and target), and every expired entry not yet told gets one alert and one
`limit_expired` audit entry; the audit entry is what makes the next sweep stay silent about it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from engine.alerts import Alert
from engine.monitor.notifier import Notifier
from storage.exchange_ids import PAPER
from storage.models import AuditLog, ExchangeAccount
from storage.repositories import audit
from tools.exchange.base import Account
from tools.exchange.models import Order, qty_text
from tools.exchange.paper import PaperAccount

log = logging.getLogger(__name__)
KIND = "limit_expired"


def _ref(order: Order) -> str:
    return f"paper-order:{order.id}"


def expiry_alert(order: Order) -> Alert:
    """What the owner of an expired limit entry is told."""
    base = order.symbol.split("/")[0]
    side = "long" if order.side.value == "buy" else "short"
    amount = qty_text(order.amount) if order.amount is not None else "?"
    price = f"{order.price:f}".rstrip("0").rstrip(".") if order.price is not None else "?"
    return Alert(
        key=f"limit-expired:{order.id}",
        type="position",
        severity="info",
        asset=base,
        title=f"Limit entry expired: {order.symbol} {side}",
        message=(
            f"Your {side} limit of {amount} {base} at {price} was not filled before its expiry, so it was cancelled "
            "with its stop and take-profit. Nothing was opened."
        ),
        suggested_actions=["Place a new entry if the setup still holds"],
    )


@dataclass
class LimitExpirySweep:
    """Cancels and reports expired limit entries of every paper account."""

    sessions: async_sessionmaker[AsyncSession]
    open_account: Callable[[ExchangeAccount], Awaitable[Account]]
    notifier: Notifier

    async def run(self) -> int:
        """One sweep; the number of expired entries told this time. One account's failure never stops the rest."""
        async with self.sessions() as session:
            rows = (
                await session.scalars(select(ExchangeAccount).where(col(ExchangeAccount.exchange_id) == PAPER))
            ).all()
        told = 0
        for row in rows:
            try:
                told += await self._account(row)
            except Exception:
                log.warning("limit expiry sweep failed for account %s", row.id, exc_info=True)
        return told

    async def _account(self, row: ExchangeAccount) -> int:
        account = await self.open_account(row)
        if not isinstance(account, PaperAccount):
            return 0
        expired = await account.expired_orders()
        if not expired:
            return 0
        async with self.sessions() as session:
            done = set(
                (
                    await session.scalars(
                        select(col(AuditLog.ref)).where(
                            col(AuditLog.kind) == KIND,
                            col(AuditLog.account_id) == row.id,
                            col(AuditLog.ref).in_([_ref(o) for o in expired]),
                        )
                    )
                ).all()
            )
        told = 0
        for order in expired:
            if _ref(order) in done:
                continue
            # Told first, then recorded: a crash between the two repeats the notice once, never loses it.
            await self.notifier.send_alert(row.user_id, expiry_alert(order))
            async with self.sessions.begin() as session:
                await audit.record(
                    session,
                    KIND,
                    user_id=row.user_id,
                    account_id=row.id,
                    ref=_ref(order),
                    data={"symbol": order.symbol, "side": order.side.value, "price": str(order.price),
                          "amount": str(order.amount), "client_order_id": order.client_order_id},
                )  # fmt: skip
            told += 1
        return told
