"""A second process for the settlement tests: presses approve, then pauses at a chosen point to be SIGKILLed.

The pause is a fault-injecting Account wrapper (test code only): `before_claim` stops in the position read that
precedes the execution claim, `before_order` after the claim but before the order, `after_order` after the
paper account booked the order but before the execution row is finished. It writes `marker` and waits forever.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from agents.state import TurnContext
from agents.wiring import open_chat
from bastion.app import build_services
from bastion.settings import load_settings
from bot.core.approvals import ApprovalsService
from storage.models import ExchangeAccount
from tools.exchange.base import Account
from tools.exchange.models import OrderIntent, PlaceResult, Position


class PausingAccount:
    """Delegates to the real account and stops for good at `stage`."""

    def __init__(self, inner: Account, stage: str, marker: Path) -> None:
        self.inner, self.stage, self.marker = inner, stage, marker

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _pause(self, at: str) -> None:
        if self.stage == at:
            self.marker.write_text(at)
            await asyncio.Event().wait()

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """Pauses before the claim (the executor reads the live position first)."""
        await self._pause("before_claim")
        return await self.inner.positions(symbol)

    async def place(self, intent: OrderIntent) -> PlaceResult:
        """Pauses before or after the real order."""
        await self._pause("before_order")
        result = await self.inner.place(intent)
        await self._pause("after_order")
        return result


async def main(token: str, user_id: int, stage: str, marker: str) -> None:
    """Press approve on `token` as `user_id` through the approvals service, pausing at `stage`."""
    async with build_services(load_settings()) as services:
        real = services.open_account

        async def open_account(row: ExchangeAccount) -> Account:
            return PausingAccount(await real(row), stage, Path(marker))  # type: ignore[return-value]

        services.open_account = open_account  # type: ignore[method-assign]
        async with open_chat(services) as chat:
            approvals = ApprovalsService(services.sessions, chat, services.executor, services.open_account)
            row = await approvals.get(token)
            assert row is not None
            ctx = TurnContext(user_id=user_id, platform="console", chat_ref=row.chat_ref or "", may_trade=True)
            print(await approvals.decide(ctx, row, approve=True))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
