"""Paper realism: an account bound to its market data source, funding at the 8 h marks, limit entries expiring."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import paper as repo
from storage.db import create_engine, session_factory
from tests.exchange.conftest import make_paper_engine
from tools.exchange.models import IntentKind, OrderIntent, OrderStatus, OrderType, PositionSide, Side
from tools.exchange.paper import MarketSourceMismatchError, PaperAccount, paper_account_key, paper_positions_bulk
from tools.exchange.paper_engine import PaperConfig
from tools.market.base import Funding, MarketDataError, Ticker
from tools.market.replay import ReplayMarketData
from tools.market.simulated import SimulatedMarketData

BTC = "BTC/USDT:USDT"
D = Decimal
CFG = PaperConfig(initial_balance=D(10_000), taker_fee=D("0.0005"), slippage=D(0))
T0 = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)  # one hour before the 08:00 funding mark


class ClockMarket:
    """A market with a settable price, clock and funding rate (None = the source publishes no funding)."""

    name = "simulated"
    simulated = True

    def __init__(self, price: float, at: datetime, rate: float | None = 0.0001) -> None:
        self.price, self.at, self.rate = price, at, rate
        self.funding_calls = 0

    async def ticker(self, symbol: str) -> Ticker:
        """The set price at the set time."""
        return Ticker(symbol=symbol, source=self.name, simulated=True, timestamp=self.at, last=self.price)

    async def funding(self, symbol: str) -> Funding:
        """The set rate, or the replay provider's refusal when there is none."""
        self.funding_calls += 1
        if self.rate is None:
            raise MarketDataError("no funding rates (candle files only)")
        return Funding(symbol=symbol, source=self.name, simulated=True, timestamp=self.at, rate=self.rate)


def opening(intent_id: str, side: Side = Side.BUY, amount: str = "0.1", **kw: Any) -> OrderIntent:
    """An entry intent."""
    return OrderIntent(intent_id=intent_id, account_ref="u", symbol=BTC, kind=IntentKind.OPEN, side=side,
                       amount=D(amount), leverage=kw.pop("leverage", 2), **kw)  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head for the module; each test gets a copy (migrating per test costs seconds)."""
    path = tmp_path_factory.mktemp("paper") / "template.db"

    async def build() -> None:
        await (await make_paper_engine(path)).dispose()

    asyncio.run(build())
    return path


@pytest.fixture
async def sessions(template: Path, tmp_path: Path) -> Any:
    shutil.copy(template, tmp_path / "paper.db")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'paper.db'}")
    yield session_factory(engine)
    await engine.dispose()


# --- bound to the market data source ----------------------------------------------------------------------------


async def test_switching_simulated_to_replay_opens_a_separate_account_and_keeps_the_long(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    """The reported bug: a BTC long opened on the simulated market was revalued (liquidated) by replayed prices."""
    when = datetime(2025, 3, 1, tzinfo=UTC)
    simulated, replay = SimulatedMarketData(seed=0, now=when), ReplayMarketData(ohlcv_dir, now=when)
    sim_key, replay_key = paper_account_key(1, simulated), paper_account_key(1, replay)
    assert (sim_key, replay_key) == ("paper:1", "paper:1@replay")
    on_sim = PaperAccount(sim_key, simulated, sessions, CFG)
    await on_sim.place(opening("e1", leverage=20))
    (before,) = await on_sim.positions()

    on_replay = PaperAccount(replay_key, replay, sessions, CFG)
    assert await on_replay.positions() == []
    assert (await on_replay.balance()).total == CFG.initial_balance  # a fresh account, on replayed prices

    (after,) = await PaperAccount(sim_key, simulated, sessions, CFG).positions()
    assert (after.size, after.entry_price) == (before.size, before.entry_price)
    assert after.unrealised_pnl == before.unrealised_pnl
    async with sessions() as s:
        assert [f.liquidation for f in await repo.list_fills(s, sim_key)] == [False]
        assert (await repo.get_account(s, sim_key)).market_source == "simulated"  # type: ignore[union-attr]
        assert (await repo.get_account(s, replay_key)).market_source == "replay"  # type: ignore[union-attr]


async def test_the_same_account_read_on_another_source_is_refused_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    when = datetime(2025, 3, 1, tzinfo=UTC)
    await PaperAccount("acct", SimulatedMarketData(seed=0, now=when), sessions, CFG).place(opening("e1", leverage=20))
    other = PaperAccount("acct", ReplayMarketData(ohlcv_dir, now=when), sessions, CFG)
    for call in (other.positions(), other.balance(), other.open_orders(), other.place(opening("e2"))):
        with pytest.raises(MarketSourceMismatchError, match=r"opened on the simulated market.*now replay"):
            await call
    # The monitor's bulk read gets this account's refusal instead of revalued positions.
    assert isinstance((await paper_positions_bulk([other]))["acct"], MarketSourceMismatchError)
    async with sessions() as s:
        assert len(await repo.list_fills(s, "acct")) == 1
        assert len(await repo.list_positions(s, "acct")) == 1


async def test_an_account_opened_before_binding_is_bound_by_its_next_write(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    market = ClockMarket(50_000, T0)
    account = PaperAccount("old", market, sessions, CFG)
    await account.place(opening("e1"))
    async with sessions.begin() as s:
        (await repo.get_account(s, "old")).market_source = None  # type: ignore[union-attr]  # as before 0010
    await account.place(opening("e2", amount="0.01"))
    async with sessions() as s:
        assert (await repo.get_account(s, "old")).market_source == "simulated"  # type: ignore[union-attr]


# --- funding ------------------------------------------------------------------------------------------------------


async def test_funding_is_paid_by_a_long_once_per_8h_mark_and_recorded(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    market = ClockMarket(50_000, T0, rate=0.0001)
    account = PaperAccount("f", market, sessions, CFG)
    await account.place(opening("e1", amount="0.2"))
    wallet0 = (await account.balance()).wallet
    market.at = T0 + timedelta(minutes=59)  # 07:59: no mark yet
    assert (await account.balance()).wallet == wallet0
    market.at, market.price = T0 + timedelta(hours=1, minutes=5), 51_000  # 08:05: the 08:00 mark is due
    assert (await account.balance()).wallet == wallet0 - D("0.2") * D(51_000) * D("0.0001")
    for minutes in (10, 300):  # later reads before 16:00 charge nothing more
        market.at = T0 + timedelta(hours=1, minutes=minutes)
        await account.sync()
    market.at = T0 + timedelta(hours=9, minutes=1)  # 16:01
    await account.sync()
    async with sessions() as s:
        rows = await repo.list_funding(s, "f")
        total = (await repo.get_account(s, "f")).funding_total  # type: ignore[union-attr]
    assert [(r.funding_time, r.side, r.amount) for r in rows] == [
        (T0 + timedelta(hours=1), "long", D("-1.02")),
        (T0 + timedelta(hours=9), "long", D("-1.02")),
    ]
    assert total == D("-2.04")
    assert (await account.balance()).wallet == wallet0 - D("2.04")


async def test_a_short_receives_positive_funding_and_a_closed_position_pays_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    market = ClockMarket(50_000, T0, rate=0.0003)
    account = PaperAccount("s", market, sessions, CFG)
    await account.place(opening("e1", side=Side.SELL, amount="0.1"))
    market.at = T0 + timedelta(hours=2)
    await account.sync()
    await account.place(OrderIntent(intent_id="c1", account_ref="u", symbol=BTC, kind=IntentKind.CLOSE))
    market.at = T0 + timedelta(hours=10)
    await account.sync()
    async with sessions() as s:
        rows = await repo.list_funding(s, "s")
    assert [(r.side, r.amount) for r in rows] == [("short", D("1.5"))]


async def test_no_funding_rate_at_the_source_means_no_funding_and_no_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    market = ClockMarket(50_000, T0, rate=None)
    account = PaperAccount("r", market, sessions, CFG)
    await account.place(opening("e1"))
    wallet = (await account.balance()).wallet
    market.at = T0 + timedelta(hours=30)
    assert (await account.balance()).wallet == wallet
    async with sessions() as s:
        assert await repo.list_funding(s, "r") == []


async def test_two_processes_settling_the_same_mark_pay_it_once(template: Path, tmp_path: Path) -> None:
    shutil.copy(template, tmp_path / "two.db")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'two.db'}")
    other: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'two.db'}")
    try:
        market = ClockMarket(50_000, T0)
        first = PaperAccount("two", market, session_factory(engine), CFG)
        second = PaperAccount("two", market, session_factory(other), CFG)
        await first.place(opening("e1"))
        market.at = T0 + timedelta(hours=1, minutes=1)
        await asyncio.gather(first.sync(), second.sync(), first.balance(), second.positions())
        async with session_factory(engine)() as s:
            assert len(await repo.list_funding(s, "two")) == 1
    finally:
        await other.dispose()
        await engine.dispose()


# --- limit entries with an expiry ---------------------------------------------------------------------------------


async def test_a_limit_entry_expires_at_its_time_with_its_stop_and_never_fills_after(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    """Replayed BTC 1h candles: a buy limit 20% under the market rests 4 h, then is cancelled as expired."""
    start = datetime(2025, 3, 3, tzinfo=UTC)
    market = ReplayMarketData(ohlcv_dir, now=start)
    last = (await market.ticker(BTC)).last
    limit, stop = round(last * 0.8), round(last * 0.75)
    account = PaperAccount("lim", market, sessions, CFG)
    res = await account.place(
        opening("L1", order_type=OrderType.LIMIT, price=D(limit), stop_price=D(stop), expires_after_s=4 * 3600)
    )
    entry = res.orders[0]
    assert entry.status is OrderStatus.OPEN
    market.set_now(start + timedelta(hours=3))
    assert len(await account.open_orders()) == 2  # the entry and its waiting stop
    market.set_now(start + timedelta(hours=4))
    assert await account.open_orders() == []
    async with sessions() as s:
        rows = {o.role: o for o in await repo.list_orders(s, "lim")}
    assert rows["main"].status == "expired" and rows["main"].expires_at == start + timedelta(hours=4)
    assert rows["stop_loss"].status == "canceled"
    assert await account.positions() == []
    assert (await account.balance()).used == 0  # the margin the limit held is free again


async def test_only_a_limit_entry_can_carry_an_expiry() -> None:
    with pytest.raises(ValueError, match="only a limit entry can expire"):
        opening("m", expires_after_s=60)


async def test_a_limit_without_expiry_rests_and_a_crossed_one_fills_before_expiry(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    market = ClockMarket(50_000, T0)
    account = PaperAccount("x", market, sessions, CFG)
    await account.place(opening("gtc", order_type=OrderType.LIMIT, price=D(40_000)))
    await account.place(opening("gtd", order_type=OrderType.LIMIT, price=D(49_000), expires_after_s=3600))
    market.at, market.price = T0 + timedelta(minutes=30), 48_900
    (pos,) = await account.positions()
    assert (pos.side, pos.entry_price) == (PositionSide.LONG, D(49_000))
    market.at = T0 + timedelta(days=20)
    assert [o.price for o in await account.open_orders()] == [D(40_000)]


async def test_positions_say_the_market_of_a_separate_account_and_show_the_liquidation(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    from agents.offline.render import p as shown
    from agents.offline.render import positions as render_positions
    from tools.agent_tools.account_tools import account_label, position_json, venue

    when = datetime(2025, 3, 1, tzinfo=UTC)
    on_replay = PaperAccount("paper:1@replay", ReplayMarketData(ohlcv_dir, now=when), sessions, CFG)
    on_sim = PaperAccount("paper:1", SimulatedMarketData(seed=0, now=when), sessions, CFG)
    assert (venue("paper", on_replay), venue("paper", on_sim)) == ("paper, replay market", "paper")
    assert account_label("paper", "paper", on_replay) == "paper (paper, replay market, simulated)"
    await on_replay.place(opening("e1", leverage=10))
    (pos,) = await on_replay.positions()
    text = render_positions({"account": "paper", "exchange": venue("paper", on_replay), "simulated": True,
                             "positions": [position_json(pos)]})  # fmt: skip
    assert text.startswith("Account paper (paper, replay market) (simulated data):")
    assert pos.liquidation_price is not None and pos.liquidation_price > 0
    assert f"10x, no stop, liquidation {shown(float(pos.liquidation_price), pos.symbol)}" in text, text
