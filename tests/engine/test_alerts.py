"""Position alerts: each condition, and deduplication with a cooldown across monitor cycles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts import position_alerts
from engine.execution.executor import Executor
from engine.execution.guards import GuardLimits
from engine.monitor.monitor import Monitor
from engine.monitor.notifier import RecordingNotifier
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.evaluate import evaluate
from storage.models import AccountMode
from storage.repositories import accounts
from storage.repositories import engine as engine_repo
from storage.repositories.users import get_or_create_user
from tools.exchange.models import Position, PositionSide

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def ctx(price: float, funding: float | None = None, **pos: object) -> RiskContext:
    position = {"symbol": "BTC/USDT:USDT", "side": "long", "entry": 100.0, "size": 2.0, "stop": 98.5} | pos
    return RiskContext(
        position=RiskPosition(**position), market=MarketView(price=price, atr=2.0, funding_rate=funding, now=NOW)
    )


def kinds(context: RiskContext) -> set[str]:
    return {
        a.key.split(":")[-1] if ":target:" not in a.key else "target"
        for a in position_alerts(context, evaluate(context), account_id=1)
    }


def test_each_position_alert() -> None:
    assert "stop_near" in kinds(ctx(99.9))  # 1.4% above the stop
    assert "stop_near" not in kinds(ctx(103.0))
    assert "target" in kinds(ctx(110.5, targets=[110.0, 120.0]))
    assert "r_breach" in kinds(ctx(97.0, stop=None, initial_stop=98.5))  # -2R with the stop gone
    assert "funding" in kinds(ctx(103.0, funding=0.001))  # long pays 0.1% per 8h
    assert "funding" not in kinds(ctx(103.0, funding=-0.001))  # a long is paid: no alert
    assert "emergency" in kinds(ctx(98.0))
    trailing = ctx(106.0, targets=[104.0, 130.0], targets_hit=1)  # T1 taken: no early partial
    trail = [a for a in position_alerts(trailing, evaluate(trailing), 1) if ":trail:" in a.key]
    assert trail and trail[0].severity == "info"


def test_funding_alert_states_cost_and_never_recommends_exit() -> None:
    context = ctx(100.0, funding=0.001, size=10.0)
    (alert,) = [a for a in position_alerts(context, evaluate(context), 1) if a.key.endswith("funding")]
    assert "3.00 USDT a day" in alert.message and "no reason to exit" in alert.message
    assert evaluate(context).action == "HOLD"


class StaticViews:
    async def view(self, symbol: str, timeframe: str) -> MarketView:
        return MarketView(price=99.9, atr=2.0, now=NOW, timeframe=timeframe)


class OneLong:
    exchange_id = "paper"
    simulated = True

    async def positions(self, symbol: str | None = None) -> list[Position]:
        return [
            Position(
                symbol="BTC/USDT:USDT",
                side=PositionSide.LONG,
                size=Decimal(2),
                entry_price=Decimal(100),
                stop_loss=Decimal("98.5"),
            )
        ]


async def test_alerts_are_deduplicated_within_the_cooldown(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "3")
        assert user.id
        row = await accounts.add_account(s, None, user_id=user.id, exchange_id="paper", label="p", credentials={})
        assert row.id
        await engine_repo.set_account_mode(s, row.id, mode=AccountMode.ADVISE, armed=False)
    clock = {"now": datetime.now(UTC)}
    notifier = RecordingNotifier()
    account = OneLong()

    async def opener(_row: object) -> OneLong:
        return account

    monitor = Monitor(
        sessions,
        open_account=opener,
        views=StaticViews(),
        executor=Executor(sessions, GuardLimits()),
        notifier=notifier,
        alert_cooldown=timedelta(hours=1),
        clock=lambda: clock["now"],
    )
    await monitor.run_cycle()
    await monitor.run_cycle()
    clock["now"] += timedelta(minutes=30)
    await monitor.run_cycle()
    assert [a.key.split(":")[-1] for _, a in notifier.alerts] == ["stop_near"]
    clock["now"] += timedelta(minutes=31)
    await monitor.run_cycle()
    assert [a.key.split(":")[-1] for _, a in notifier.alerts] == ["stop_near", "stop_near"]
