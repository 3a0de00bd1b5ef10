"""Limit entries with an expiry over replayed real BTC candles: cancelled at their time, recorded, told once."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.monitor.expiry import LimitExpirySweep
from engine.monitor.notifier import RecordingNotifier
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import AuditLog, ExchangeAccount
from storage.repositories import accounts
from storage.repositories.users import get_or_create_user
from tools.exchange.models import IntentKind, OrderIntent, OrderStatus, OrderType, Side
from tools.exchange.paper import PaperAccount
from tools.market.replay import ReplayMarketData

BTC = "BTC/USDT:USDT"
START = datetime(2025, 4, 7, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app schema migrated once for the module; each test works on a copy."""
    path = tmp_path_factory.mktemp("expiry") / "template.db"

    async def build() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture
async def sessions(template: Path, tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    shutil.copy(template, tmp_path / "app.db")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    yield session_factory(engine)
    await engine.dispose()


async def _paper_row(sessions: async_sessionmaker[AsyncSession]) -> ExchangeAccount:
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "42")
        assert user.id
        return await accounts.add_account(s, None, user_id=user.id, exchange_id="paper", label="p", credentials={})


async def _limit(paper: PaperAccount, intent_id: str, price: float, hours: float) -> None:
    await paper.place(
        OrderIntent(
            intent_id=intent_id,
            account_ref="t",
            symbol=BTC,
            kind=IntentKind.OPEN,
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            amount=Decimal("0.01"),
            price=Decimal(str(round(price))),
            stop_price=Decimal(str(round(price * 0.95))),
            expires_after_s=int(hours * 3600),
        )
    )


async def test_expired_limit_is_cancelled_recorded_and_told_once_over_cycles(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    row = await _paper_row(sessions)
    market = ReplayMarketData(ohlcv_dir, now=START)
    paper = PaperAccount(f"paper:{row.id}", market, sessions)
    last = (await market.ticker(BTC)).last
    await _limit(paper, "far", last * 0.7, hours=4)  # 30% under the market: never reached in 4 h
    await _limit(paper, "later", last * 0.7, hours=48)
    notifier = RecordingNotifier()

    async def opened(_row: ExchangeAccount) -> PaperAccount:
        return paper

    sweep = LimitExpirySweep(sessions, opened, notifier)
    market.set_now(START + timedelta(hours=3, minutes=45))
    assert await sweep.run() == 0 and notifier.alerts == []
    market.set_now(START + timedelta(hours=4))
    assert await sweep.run() == 1
    for hours in (5, 9, 20):  # later cycles: nothing new to tell, the expired entry stays cancelled
        market.set_now(START + timedelta(hours=hours))
        assert await sweep.run() == 0
    ((user_id, alert),) = notifier.alerts
    assert user_id == row.user_id
    assert alert.title == "Limit entry expired: BTC/USDT:USDT long"
    assert f"at {round(last * 0.7)} was not filled before its expiry" in alert.message
    async with sessions() as s:
        audits = (await s.scalars(select(AuditLog).where(AuditLog.kind == "limit_expired"))).all()
    assert len(audits) == 1 and audits[0].account_id == row.id and audits[0].data["symbol"] == BTC
    # The other entry rests on; its own expiry comes later and is told then.
    assert [o.amount for o in await paper.open_orders() if o.type == "limit"] == [Decimal("0.01")]
    market.set_now(START + timedelta(hours=48))
    assert await sweep.run() == 1
    assert {o.status for o in await paper.expired_orders()} == {OrderStatus.EXPIRED}
    assert len(notifier.alerts) == 2


async def test_a_crash_between_telling_and_recording_tells_again_once(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    row = await _paper_row(sessions)
    market = ReplayMarketData(ohlcv_dir, now=START)
    paper = PaperAccount(f"paper:{row.id}", market, sessions)
    await _limit(paper, "far", (await market.ticker(BTC)).last * 0.7, hours=1)
    market.set_now(START + timedelta(hours=2))

    class Crashing(RecordingNotifier):
        async def send_alert(self, user_id: int, alert: object) -> None:  # type: ignore[override]
            await super().send_alert(user_id, alert)  # type: ignore[arg-type]
            raise ConnectionError("the process died right after the notice was queued")

    async def opened(_row: ExchangeAccount) -> PaperAccount:
        return paper

    crashing = Crashing()
    assert await LimitExpirySweep(sessions, opened, crashing).run() == 0  # logged, not raised
    healthy = RecordingNotifier()
    assert await LimitExpirySweep(sessions, opened, healthy).run() == 1
    assert await LimitExpirySweep(sessions, opened, healthy).run() == 0
    assert len(crashing.alerts) == 1 and len(healthy.alerts) == 1
