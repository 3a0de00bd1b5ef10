"""Monitor on a paper account over replayed real SOL 1h candles: a breached stop is handled exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import Executor
from engine.execution.guards import GuardLimits
from engine.monitor.market_view import StructureMarketViews
from engine.monitor.monitor import Monitor
from engine.monitor.notifier import RecordingNotifier
from storage.models import AccountMode, ExchangeAccount, PositionPlan, RiskDecision
from storage.repositories import accounts
from storage.repositories import engine as engine_repo
from storage.repositories.users import get_or_create_user
from tools.exchange.models import IntentKind, OrderIntent, Side
from tools.exchange.paper import PaperAccount
from tools.market.replay import ReplayMarketData

SYMBOL = "SOL/USDT:USDT"


def falling_bar(data_dir: Path) -> datetime:
    """The open time of a 1h candle after which SOL closes >1% lower three bars in a row, without a rally first."""
    df = pd.read_csv(data_dir / "SOL_USDT-1h.csv")
    close, high = df["close"].to_numpy(), df["high"].to_numpy()
    for i in range(2000, len(df) - 4):
        if all(close[i + k] < close[i] * 0.99 for k in (1, 2, 3)) and np.max(high[i + 1 : i + 4]) < close[i] * 1.002:
            return datetime.fromtimestamp(df["timestamp"].iloc[i] / 1000, UTC)
    raise AssertionError("no falling bar found")


async def _setup(sessions: async_sessionmaker[AsyncSession], data_dir: Path, mode: AccountMode):
    bar_open = falling_bar(data_dir)
    market = ReplayMarketData(data_dir, now=bar_open + timedelta(hours=1))  # that bar has just closed
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "99")
        assert user.id
        row = await accounts.add_account(s, None, user_id=user.id, exchange_id="paper", label="p", credentials={})
        assert row.id
        row = await engine_repo.set_account_mode(s, row.id, mode=mode, armed=True)
    paper = PaperAccount(f"paper:{row.id}", market, sessions)
    await paper.place(
        OrderIntent(
            intent_id="open-1",
            account_ref="t",
            symbol=SYMBOL,
            kind=IntentKind.OPEN,
            side=Side.BUY,
            amount=Decimal(10),
            leverage=3,
        )
    )
    (position,) = await paper.positions()
    entry = float(position.entry_price)
    async with sessions.begin() as s:
        # The user set a stop through Bastion; the exchange holds no stop order, so the engine watches it.
        await engine_repo.save_plan(
            s,
            PositionPlan(
                account_id=row.id,
                symbol=SYMBOL,
                side="long",
                entry=entry,
                initial_stop=entry * 0.995,
                stop=entry * 0.995,
                targets=[entry * 1.05],
                opened_at=datetime.now(UTC),
            ),
        )
    notifier = RecordingNotifier()
    limits = GuardLimits(max_close_pct=50, min_confidence=0.7, max_actions_per_hour=6, daily_loss_limit_usd=500)
    monitor = Monitor(
        sessions,
        open_account=lambda _row: _opened(paper),
        views=StructureMarketViews(market),
        executor=Executor(sessions, limits),
        notifier=notifier,
    )
    return market, paper, monitor, notifier, row


async def _opened(paper: PaperAccount) -> PaperAccount:
    return paper


@pytest.fixture
def data_dir(ohlcv_dir: Path) -> Path:
    return ohlcv_dir


async def test_auto_mode_breached_stop_exits_exactly_once(
    sessions: async_sessionmaker[AsyncSession], data_dir: Path
) -> None:
    market, paper, monitor, notifier, _row = await _setup(sessions, data_dir, AccountMode.AUTO)
    now = market.now_ms or 0
    first = await monitor.run_cycle()
    assert first.positions == 1 and first.decisions[0].action == "HOLD", first.decisions[0].reasoning
    executions = []
    for _ in range(3):
        now += 3_600_000
        market.set_now(now)
        cycle = await monitor.run_cycle()
        executions += [e for e in cycle.executions if e.placed]
    assert [e.status for e in executions] == ["placed"]
    assert await paper.positions() == []
    async with sessions() as s:
        actions = [d.action for d in (await s.scalars(select(RiskDecision))).all()]
    assert actions.count("EMERGENCY_EXIT") == 1
    assert any(a.severity == "critical" for _, a in notifier.alerts)
    assert notifier.approvals == []


async def test_advise_mode_breached_stop_asks_exactly_once(
    sessions: async_sessionmaker[AsyncSession], data_dir: Path
) -> None:
    market, paper, monitor, notifier, row = await _setup(sessions, data_dir, AccountMode.ADVISE)
    now = market.now_ms or 0
    await monitor.run_cycle()
    for _ in range(3):
        now += 3_600_000
        market.set_now(now)
        cycle = await monitor.run_cycle()
        assert cycle.executions == []
    assert len(notifier.approvals) == 1
    user_id, approval, decision = notifier.approvals[0]
    assert decision.action == "EMERGENCY_EXIT" and user_id == row.user_id
    assert approval.summary.startswith("EMERGENCY EXIT 100% of SOL/USDT:USDT long")
    assert len(await paper.positions()) == 1  # nothing executed without a button press


async def test_off_accounts_are_never_touched(sessions: async_sessionmaker[AsyncSession], data_dir: Path) -> None:
    market, _paper, monitor, notifier, row = await _setup(sessions, data_dir, AccountMode.OFF)
    market.set_now((market.now_ms or 0) + 7_200_000)
    cycle = await monitor.run_cycle()
    assert cycle.positions == 0 and notifier.alerts == [] and notifier.approvals == []
    async with sessions() as s:
        assert (await s.get(ExchangeAccount, row.id)) is not None
