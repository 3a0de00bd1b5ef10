"""Paper account behaviour through its public API, persisted in SQLite and in a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import paper as repo
from storage.db import create_engine, session_factory
from tests.conftest import REPO_ROOT
from tests.exchange.fakes import FakeMarket
from tools.exchange.base import Account
from tools.exchange.errors import InsufficientFundsError, IntentConflictError, InvalidOrderError, NoPositionError
from tools.exchange.models import IntentKind, OrderIntent, OrderStatus, OrderType, PositionSide, Side
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig

BTC = "BTC/USDT:USDT"
D = Decimal
CFG = PaperConfig(initial_balance=D(10_000), taker_fee=D("0.0005"), maker_fee=D("0.0002"), slippage=D("0.001"))
_n = 0


def intent(kind: IntentKind, **kw: Any) -> OrderIntent:
    """An intent with a fresh id unless one is given."""
    global _n
    _n += 1
    kw.setdefault("intent_id", f"t-{_n}")
    return OrderIntent(account_ref="user-1", symbol=kw.pop("symbol", BTC), kind=kind, **kw)


@pytest.fixture
def market() -> FakeMarket:
    return FakeMarket(BTC=50_000)


@pytest.fixture
def account(sessions: async_sessionmaker[AsyncSession], market: FakeMarket) -> PaperAccount:
    return PaperAccount("acct-1", market, sessions, CFG)


async def test_is_an_account(account: PaperAccount) -> None:
    assert isinstance(account, Account)
    assert account.simulated


async def test_market_open_fills_at_price_with_slippage_and_fee(account: PaperAccount) -> None:
    res = await account.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"), leverage=5))
    order = res.orders[0]
    assert order.status is OrderStatus.CLOSED
    assert order.average == D(50_000) * D("1.001")
    fee = D("0.1") * D(50_050) * D("0.0005")
    assert order.fee == fee
    (pos,) = await account.positions()
    assert (pos.side, pos.size, pos.entry_price, pos.leverage) == (PositionSide.LONG, D("0.1"), D(50_050), D(5))
    # isolated liquidation: entry * (1 - 1/5 + 0.005)
    assert pos.liquidation_price == D(50_050) * D("0.805")
    bal = await account.balance()
    assert bal.wallet == D(10_000) - fee
    assert bal.unrealised_pnl == (D(50_000) - D(50_050)) * D("0.1")
    assert bal.used == D(50_050) * D("0.1") / 5


async def test_partial_close_realises_pnl(account: PaperAccount, market: FakeMarket) -> None:
    await account.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.2"), leverage=2))
    market.set("BTC", 55_000)
    res = await account.place(intent(IntentKind.CLOSE, close_pct=D(25)))
    close = res.orders[0]
    assert close.side is Side.SELL and close.reduce_only and close.filled == D("0.05")
    exit_price = D(55_000) * D("0.999")
    (pos,) = await account.positions()
    assert pos.size == D("0.15")
    assert pos.realised_pnl == (exit_price - D(50_050)) * D("0.05")


async def test_limit_rests_then_fills_when_crossed_at_maker_fee(account: PaperAccount, market: FakeMarket) -> None:
    res = await account.place(
        intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"), order_type=OrderType.LIMIT, price=D(48_000))
    )
    assert res.orders[0].status is OrderStatus.OPEN
    assert await account.positions() == []
    market.set("BTC", 47_900)
    (pos,) = await account.positions()
    assert pos.entry_price == D(48_000)
    (filled,) = (await account.place(intent(IntentKind.CLOSE, intent_id=res.intent_id + "-x"))).orders[:1]
    assert filled.filled == D("0.1")


async def test_stop_loss_triggers_and_cancels_take_profit(account: PaperAccount, market: FakeMarket) -> None:
    await account.place(
        intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"), stop_price=D(49_000), take_profit_price=D(53_000))
    )
    (pos,) = await account.positions()
    assert (pos.stop_loss, pos.take_profit) == (D(49_000), D(53_000))
    market.set("BTC", 48_800)
    assert await account.positions() == []
    assert await account.open_orders() == []
    bal = await account.balance()
    assert bal.wallet < D(10_000) and bal.used == 0


async def test_set_stop_replaces_previous_and_refuses_wrong_side(account: PaperAccount) -> None:
    await account.place(intent(IntentKind.OPEN, side=Side.SELL, amount=D("0.1")))
    first = await account.place(intent(IntentKind.SET_STOP, stop_price=D(52_000)))
    second = await account.place(intent(IntentKind.SET_STOP, stop_price=D(51_000)))
    assert second.canceled_order_ids == [first.orders[0].id]
    (pos,) = await account.positions()
    assert pos.stop_loss == D(51_000)
    with pytest.raises(InvalidOrderError, match="above"):
        await account.place(intent(IntentKind.SET_STOP, stop_price=D(45_000)))


async def test_liquidation_closes_at_liquidation_price(account: PaperAccount, market: FakeMarket) -> None:
    await account.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"), leverage=10))
    (pos,) = await account.positions()
    liq = pos.liquidation_price
    assert liq is not None
    market.set("BTC", float(liq) - 1)
    assert await account.positions() == []
    bal = await account.balance()
    expected_loss = (liq - D(50_050)) * D("0.1")
    assert bal.wallet == pytest.approx(
        D(10_000) + expected_loss - D("0.1") * D(50_050) * D("0.0005") - D("0.1") * liq * D("0.0005"), abs=D("1e-6")
    )


async def test_state_survives_restart(engine: AsyncEngine, account: PaperAccount, market: FakeMarket) -> None:
    await account.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"), stop_price=D(45_000)))
    before = (await account.positions(), await account.balance())
    reopened = PaperAccount("acct-1", market, session_factory(engine), CFG)
    assert (await reopened.positions(), await reopened.balance()) == before


async def test_same_intent_twice_returns_first_order(
    account: PaperAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    it = intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"))
    first = await account.place(it)
    second = await account.place(it)
    assert second.duplicate and not first.duplicate
    assert [o.id for o in second.orders] == [o.id for o in first.orders]
    async with sessions() as s:
        assert len(await repo.list_fills(s, "acct-1")) == 1
    changed = it.model_copy(update={"amount": D("0.2")})
    with pytest.raises(IntentConflictError):
        await account.place(changed)


async def test_insufficient_funds_records_nothing(
    account: PaperAccount, sessions: async_sessionmaker[AsyncSession]
) -> None:
    it = intent(IntentKind.OPEN, side=Side.BUY, amount=D(5))  # 250k notional at 1x on 10k
    with pytest.raises(InsufficientFundsError) as info:
        await account.place(it)
    assert "Insufficient funds" in info.value.user_message
    async with sessions() as s:
        assert await repo.list_fills(s, "acct-1") == []
        assert await repo.list_orders(s, "acct-1") == []
        assert await repo.get_intent(s, "acct-1", it.intent_id) is None
    assert (await account.balance()).wallet == D(10_000)


async def test_close_without_position_is_refused(account: PaperAccount) -> None:
    with pytest.raises(NoPositionError):
        await account.place(intent(IntentKind.CLOSE))


async def test_opposite_open_nets_then_flips(account: PaperAccount) -> None:
    await account.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"), leverage=5))
    await account.place(intent(IntentKind.OPEN, side=Side.SELL, amount=D("0.3")))
    (pos,) = await account.positions()
    assert pos.side is PositionSide.SHORT and pos.size == D("0.2")


async def test_two_pools_updating_one_account_lose_no_update(db_url: str, engine: AsyncEngine) -> None:
    """Two engines (two connection pools, like two processes) close one position 2 x 20 times at once."""
    other = create_engine(db_url)
    market = FakeMarket(BTC=50_000)
    first = PaperAccount("shared", market, session_factory(engine), CFG)
    second = PaperAccount("shared", market, session_factory(other), CFG)
    try:
        await first.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D(3), leverage=20))
        (opened,) = await first.positions()
        wallet_after_open = (await first.balance()).wallet
        step = D("0.05")
        closes = [
            (first if n % 2 else second).place(intent(IntentKind.CLOSE, amount=step, intent_id=f"close-{n}"))
            for n in range(40)
        ]
        results = await asyncio.gather(*closes)
        assert all(r.orders[0].filled == step for r in results)
        exit_price = D(50_000) * (1 - CFG.slippage)
        realised = ((exit_price - opened.entry_price) * step).quantize(D("1e-10"))
        fee = (step * exit_price * CFG.taker_fee).quantize(D("1e-10"))
        for account in (first, second):
            (pos,) = await account.positions()
            assert pos.size == D(3) - 40 * step
            assert pos.realised_pnl == 40 * realised
            assert (await account.balance()).wallet == wallet_after_open + 40 * (realised - fee)
        async with session_factory(other)() as s:
            assert len(await repo.list_fills(s, "shared")) == 41
    finally:
        await other.dispose()


async def test_two_pools_creating_one_account_at_once(db_url: str, engine: AsyncEngine) -> None:
    other = create_engine(db_url)
    market = FakeMarket(BTC=50_000)
    try:
        pair = [PaperAccount("new", market, session_factory(e), CFG) for e in (engine, other)]
        balances = await asyncio.gather(*(a.balance() for a in pair for _ in range(5)))
        assert {b.wallet for b in balances} == {CFG.initial_balance}
    finally:
        await other.dispose()


async def test_two_processes_updating_one_account_lose_no_update(
    db_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Two real processes close one position 20 times each, at once: the sum of all changes is what remains."""
    account = PaperAccount("shared", FakeMarket(BTC=50_000), sessions, CFG)
    await account.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D(3), leverage=20))
    (opened,) = await account.positions()
    wallet_after_open = (await account.balance()).wallet
    start = tmp_path / "start"
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.exchange.paper_worker",
            db_url,
            name,
            "20",
            "0.05",
            str(start),
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for name in ("first", "second")
    ]
    await asyncio.sleep(0.5)
    start.touch()
    outputs = [(await asyncio.wait_for(w.communicate(), timeout=120))[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    step = D("0.05")
    exit_price = D(50_000) * (1 - CFG.slippage)
    realised = ((exit_price - opened.entry_price) * step).quantize(D("1e-10"))
    fee = (step * exit_price * CFG.taker_fee).quantize(D("1e-10"))
    (pos,) = await account.positions()
    assert pos.size == D(3) - 40 * step
    assert (await account.balance()).wallet == wallet_after_open + 40 * (realised - fee)
    async with sessions() as s:
        assert len(await repo.list_fills(s, "shared")) == 41


async def test_snapshot_reads_match_the_orm_rows(
    sessions: async_sessionmaker[AsyncSession], market: FakeMarket
) -> None:
    """The Core snapshot reads (balance, positions, the monitor's bulk read) see what the ORM tables hold: the
    account row, every open position and only the open orders, oldest first, for one account and for many."""
    market.set("ETH", 3_000)
    one, two = PaperAccount("acct-1", market, sessions, CFG), PaperAccount("acct-2", market, sessions, CFG)
    await one.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1")))
    await one.place(intent(IntentKind.OPEN, symbol="ETH/USDT:USDT", side=Side.SELL, amount=D(1)))
    resting = [
        await one.place(intent(IntentKind.OPEN, side=Side.BUY, amount=D("0.1"), order_type=OrderType.LIMIT, price=D(p)))
        for p in (45_000, 44_000, 43_000)
    ]
    await one.place(intent(IntentKind.CANCEL, order_id=resting[1].orders[0].id))  # not open: not in a snapshot
    await two.place(intent(IntentKind.OPEN, side=Side.SELL, amount=D("0.2")))
    await two.place(intent(IntentKind.SET_STOP, stop_price=D(55_000)))
    async with sessions() as session:
        many = await repo.read_snapshots(session, ["acct-1", "acct-2", "never-used"])
        alone = await repo.read_snapshots(session, ["acct-2"])
        assert await repo.read_snapshots(session, ["never-used"]) == {}
        for account_id in ("acct-1", "acct-2"):
            orm_account = await repo.get_account(session, account_id)
            assert orm_account is not None
            orm_positions = await repo.list_positions(session, account_id)
            orm_orders = await repo.list_orders(session, account_id, status=OrderStatus.OPEN.value)
            for snapshot in [many[account_id]] + ([alone[account_id]] if account_id == "acct-2" else []):
                assert snapshot.account._asdict() == orm_account.model_dump()
                by_symbol = sorted(orm_positions, key=lambda p: p.symbol)
                assert sorted((p._asdict() for p in snapshot.positions), key=lambda p: p["symbol"]) == [
                    p.model_dump() for p in by_symbol
                ]
                assert [dict(o._asdict()) for o in snapshot.open_orders] == [o.model_dump() for o in orm_orders]
    assert set(many) == {"acct-1", "acct-2"}
    assert len(many["acct-1"].positions) == 2 and len(many["acct-1"].open_orders) == 2
    assert [o.role for o in many["acct-2"].open_orders] == ["stop_loss"]
