"""Property tests of the paper engine: value conservation, reduce-only never flips, idempotent placement."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import async_sessionmaker

from storage import paper as repo
from tests.exchange.conftest import make_paper_engine
from tests.exchange.fakes import FakeMarket
from tools.exchange.errors import AccountError
from tools.exchange.models import IntentKind, OrderIntent, OrderType, Side
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig

BTC = "BTC/USDT:USDT"
CFG = PaperConfig(
    initial_balance=Decimal(10_000),
    taker_fee=Decimal("0.0006"),
    maker_fee=Decimal("0.0002"),
    slippage=Decimal("0.0005"),
)

prices = st.integers(min_value=20_000, max_value=80_000)
amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("0.5"), places=3)
step = st.one_of(
    st.tuples(st.just("open"), st.sampled_from([Side.BUY, Side.SELL]), amounts, st.integers(1, 20)),
    st.tuples(st.just("limit"), st.sampled_from([Side.BUY, Side.SELL]), amounts, prices),
    st.tuples(st.just("close"), st.decimals(min_value=1, max_value=100, places=0)),
    st.tuples(st.just("close_amount"), amounts),
    st.tuples(st.just("stop"), st.integers(-5_000, 5_000)),
    st.tuples(st.just("tp"), st.integers(-5_000, 5_000)),
    st.tuples(st.just("price"), prices),
)


def _intent(i: int, op: tuple) -> OrderIntent | None:  # type: ignore[type-arg]
    base = {"intent_id": f"i{i}", "account_ref": "u", "symbol": BTC}
    kind = op[0]
    if kind == "open":
        return OrderIntent(kind=IntentKind.OPEN, side=op[1], amount=op[2], leverage=op[3], **base)
    if kind == "limit":
        return OrderIntent(
            kind=IntentKind.OPEN, side=op[1], amount=op[2], order_type=OrderType.LIMIT, price=Decimal(op[3]), **base
        )
    if kind == "close":
        return OrderIntent(kind=IntentKind.CLOSE, close_pct=op[1], **base)
    if kind == "close_amount":
        return OrderIntent(kind=IntentKind.CLOSE, amount=op[1], **base)
    return None


async def _run(ops: list[tuple], path: Path) -> None:  # type: ignore[type-arg]
    engine = await make_paper_engine(path)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    market = FakeMarket(BTC=50_000)
    account = PaperAccount("acct", market, sessions, CFG)
    try:
        for i, op in enumerate(ops):
            before = await account.positions(BTC)
            if op[0] == "price":
                market.set(BTC, op[1])
                await account.sync()
            elif op[0] in ("stop", "tp") and before:
                mark = before[0].mark_price or Decimal(50_000)
                kind = IntentKind.SET_STOP if op[0] == "stop" else IntentKind.SET_TAKE_PROFIT
                level = mark + Decimal(op[1])
                if level > 0:
                    key = "stop_price" if op[0] == "stop" else "take_profit_price"
                    intent = OrderIntent(intent_id=f"i{i}", account_ref="u", symbol=BTC, kind=kind, **{key: level})
                    with contextlib.suppress(AccountError):
                        await account.place(intent)
            else:
                intent = _intent(i, op)
                if intent is None:
                    continue
                try:
                    first = await account.place(intent)
                except AccountError:
                    continue
                # Idempotent: the same intent again returns the first orders and changes nothing.
                wallet = (await account.balance()).wallet
                again = await account.place(intent)
                assert again.duplicate
                assert [o.id for o in again.orders] == [o.id for o in first.orders]
                assert (await account.balance()).wallet == wallet
                if intent.kind is IntentKind.CLOSE and before:
                    after = await account.positions(BTC)
                    # Reduce-only never flips or grows a position.
                    assert not after or (after[0].side == before[0].side and after[0].size <= before[0].size)
            await _check_conservation(account, sessions)
    finally:
        await engine.dispose()


async def _check_conservation(account: PaperAccount, sessions: async_sessionmaker) -> None:  # type: ignore[type-arg]
    balance = await account.balance()
    async with sessions() as s:
        fills = await repo.list_fills(s, "acct")
        row = await repo.get_account(s, "acct")
    realised = sum((f.realised_pnl for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    assert row is not None
    assert balance.wallet == CFG.initial_balance + realised - fees
    assert (row.realised_pnl, row.fees_paid) == (realised, fees)
    assert balance.total == balance.wallet + balance.unrealised_pnl
    assert balance.used >= 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=12))
def test_paper_invariants_hold_for_any_sequence(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(ops, Path(tmp) / "p.db"))
