"""One bad account or symbol never stops a monitor cycle: the failure is reported, the others are evaluated."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import ExecutionOutcome, Executor
from engine.execution.guards import GuardLimits
from engine.monitor.monitor import Monitor
from engine.monitor.notifier import RecordingNotifier
from engine.risk.context import MarketView
from storage.models import AccountMode, ExchangeAccount, PositionPlan
from storage.repositories import accounts
from storage.repositories import engine as engine_repo
from storage.repositories.users import get_or_create_user
from tests.exchange.fakes import FakeMarket
from tools.exchange.models import IntentKind, OrderIntent, Position, Side
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SYMBOLS = ("SOL/USDT:USDT", "ETH/USDT:USDT", "BTC/USDT:USDT")  # the second account holds ETH


class Views:
    """Views at the fake market's price; structure fails for the symbols in `fail`."""

    def __init__(self, market: FakeMarket, fail: set[str]) -> None:
        self.market, self.fail = market, fail

    async def view(self, symbol: str, timeframe: str) -> MarketView:
        if symbol in self.fail:
            raise ValueError(f"structure of {symbol} is broken")
        return MarketView(price=self.market.prices[symbol], atr=2.0, now=NOW, timeframe=timeframe)


class BrokenPositions:
    """An account whose positions() raises something no one planned for."""

    exchange_id, simulated = "paper", True

    async def positions(self, symbol: str | None = None) -> list[Position]:
        raise RuntimeError("positions exploded")


class CrashingExecutor(Executor):
    """The executor crashes for one account."""

    def __init__(self, *args: Any, crash_for: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_for = crash_for

    async def execute(self, **kwargs: Any) -> ExecutionOutcome:
        if kwargs["row"].id == self.crash_for:
            raise RuntimeError("executor crashed")
        return await super().execute(**kwargs)


@pytest.mark.parametrize("fault", ["open_account", "positions", "structure", "executor"])
async def test_a_failure_in_one_of_three_accounts_leaves_the_others_evaluated(
    sessions: async_sessionmaker[AsyncSession], fault: str
) -> None:
    market = FakeMarket(SOL=100.0, ETH=100.0, BTC=100.0)
    rows: list[ExchangeAccount] = []
    papers: dict[int, PaperAccount] = {}
    for i, symbol in enumerate(SYMBOLS):
        async with sessions.begin() as s:
            user = await get_or_create_user(s, "telegram", str(100 + i))
            assert user.id
            row = await accounts.add_account(s, None, user_id=user.id, exchange_id="paper", label="p", credentials={})
            assert row.id
            row = await engine_repo.set_account_mode(s, row.id, mode=AccountMode.AUTO, armed=True)
        paper = PaperAccount(f"paper:{row.id}", market, sessions, PaperConfig(slippage=Decimal(0)))
        await paper.place(
            OrderIntent(
                intent_id="open", account_ref="t", symbol=symbol, kind=IntentKind.OPEN, side=Side.BUY, amount=Decimal(1)
            )
        )
        async with sessions.begin() as s:
            await engine_repo.save_plan(
                s,
                PositionPlan(account_id=row.id, symbol=symbol, side="long", entry=100.0, stop=99.0, initial_stop=99.0),
            )
        rows.append(row)
        papers[row.id] = paper
    for symbol in SYMBOLS:
        market.set(symbol, 98.9)  # every stop is breached: each evaluated account exits
    bad = rows[1].id
    assert bad is not None

    async def opener(row: ExchangeAccount) -> Any:
        if row.id == bad and fault == "open_account":
            raise RuntimeError("cannot open")
        if row.id == bad and fault == "positions":
            return BrokenPositions()
        return papers[row.id or 0]

    executor_args = (sessions, GuardLimits())
    executor = CrashingExecutor(*executor_args, crash_for=bad) if fault == "executor" else Executor(*executor_args)
    monitor = Monitor(
        sessions,
        open_account=opener,
        views=Views(market, {SYMBOLS[1]} if fault == "structure" else set()),
        executor=executor,
        notifier=RecordingNotifier(),
        clock=lambda: NOW,
    )
    report = await monitor.run_cycle()
    assert len(report.errors) == 1, report.errors
    assert ("ETH" in report.errors[0]) if fault == "structure" else (f"account {bad}" in report.errors[0])
    assert report.positions == (3 if fault == "executor" else 2)
    assert [e.status for e in report.executions] == ["placed", "placed"]
    for row in (rows[0], rows[2]):
        assert await papers[row.id or 0].positions() == []  # the healthy accounts were acted on
    assert len(await papers[bad].positions()) == 1
