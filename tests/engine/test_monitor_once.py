"""The monitor acts once per condition of a position: ten cycles on a paper account, auto and advise mode."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import ExecutionOutcome, Executor
from engine.execution.guards import GuardLimits
from engine.execution.proposals import execute_proposal
from engine.monitor.monitor import CycleReport, Monitor
from engine.monitor.notifier import RecordingNotifier
from engine.risk.context import MarketView
from storage.models import AccountMode, ExchangeAccount, PositionPlan
from storage.repositories import accounts
from storage.repositories import approvals as approvals_repo
from storage.repositories import engine as engine_repo
from storage.repositories.users import get_or_create_user
from tests.engine.structure_fixtures import level, report
from tests.exchange.fakes import FakeMarket
from tools.exchange.errors import ExchangeUnavailableError
from tools.exchange.models import IntentKind, OrderIntent, PlaceResult, Position, Side
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig
from tools.structure.report import StructureReport

SYMBOL = "SOL/USDT:USDT"
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CYCLES = 10


@dataclass
class Views:
    """A market view at the fake market's price, with the structure and volume the test sets."""

    market: FakeMarket
    clock: dict[str, datetime]
    structure: StructureReport | None = None
    volume_ratio: float | None = None
    fail: set[str] = field(default_factory=set)

    async def view(self, symbol: str, timeframe: str) -> MarketView:
        if symbol in self.fail:
            raise ValueError(f"structure failed for {symbol}")
        return MarketView(
            price=self.market.prices[symbol],
            atr=2.0,
            structure=self.structure,
            volume_ratio=self.volume_ratio,
            now=self.clock["now"],
            timeframe="1h",
        )


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    market: FakeMarket
    views: Views
    clock: dict[str, datetime]
    notifier: RecordingNotifier
    paper: PaperAccount
    row: ExchangeAccount
    monitor: Monitor

    async def cycles(self, n: int = CYCLES, step: timedelta = timedelta(minutes=20)) -> list[CycleReport]:
        out = []
        for _ in range(n):
            out.append(await self.monitor.run_cycle())
            self.clock["now"] += step
        return out

    async def position(self) -> Position | None:
        found = await self.paper.positions(SYMBOL)
        return found[0] if found else None

    async def forget(self) -> None:
        """Lose the plan's record of what was done, as a process killed right after an order would."""
        async with self.sessions.begin() as s:
            plan = await engine_repo.get_plan(s, self.row.id or 0, SYMBOL, "long")
            assert plan is not None and plan.handled
            plan.handled, plan.targets_hit = {}, 0
            await engine_repo.save_plan(s, plan)

    async def plan(self) -> PositionPlan:
        async with self.sessions() as s:
            plan = await engine_repo.get_plan(s, self.row.id or 0, SYMBOL, "long")
        assert plan is not None
        return plan


async def world(
    sessions: async_sessionmaker[AsyncSession],
    mode: AccountMode,
    *,
    leverage: int,
    stop: float | None,
    targets: list[float],
    account: Any = None,
    limits: GuardLimits | None = None,
) -> World:
    """A paper account with a 10 SOL long opened at 100, watched by the monitor in `mode`."""
    clock = {"now": START}
    market = FakeMarket(SOL=100.0)
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "7")
        assert user.id
        row = await accounts.add_account(s, None, user_id=user.id, exchange_id="paper", label="p", credentials={})
        assert row.id
        row = await engine_repo.set_account_mode(s, row.id, mode=mode, armed=True)
    # No slippage: the entry is exactly 100, so the plan saved below is the position's plan.
    paper = PaperAccount(f"paper:{row.id}", market, sessions, PaperConfig(slippage=Decimal(0)))
    await paper.place(
        OrderIntent(
            intent_id="open",
            account_ref="t",
            symbol=SYMBOL,
            kind=IntentKind.OPEN,
            side=Side.BUY,
            amount=Decimal(10),
            leverage=leverage,
        )
    )
    async with sessions.begin() as s:
        await engine_repo.save_plan(
            s,
            PositionPlan(
                account_id=row.id,
                symbol=SYMBOL,
                side="long",
                entry=100.0,
                initial_stop=stop,
                stop=stop,  # the engine watches it: the exchange holds no stop order
                targets=targets,
                opened_at=START,
            ),
        )
    views = Views(market, clock)
    notifier = RecordingNotifier()
    opened = account or paper

    async def opener(_row: ExchangeAccount) -> Any:
        return opened

    monitor = Monitor(
        sessions,
        open_account=opener,
        views=views,
        # Every calibrated confidence clears 0: these tests are about acting once per condition, not the minimum.
        executor=Executor(sessions, limits or GuardLimits(min_confidence=0.0), clock=lambda: clock["now"]),
        notifier=notifier,
        approval_ttl=timedelta(minutes=5),  # shorter than a cycle step: pending approvals never dedupe
        clock=lambda: clock["now"],
    )
    return World(sessions, market, views, clock, notifier, paper, row, monitor)


def placed(reports: list[CycleReport]) -> list[ExecutionOutcome]:
    return [e for r in reports for e in r.executions if e.placed]


def once_each(outcomes: list[ExecutionOutcome]) -> None:
    counts = Counter(e.intent_id for e in outcomes)
    assert all(n == 1 for n in counts.values()), counts


def orders_of(outcomes: list[ExecutionOutcome], kind: IntentKind) -> list[ExecutionOutcome]:
    return [e for e in outcomes if e.result is not None and e.result.kind is kind]


# --- auto mode: exactly one order per condition ------------------------------------------------------


@pytest.mark.parametrize("leverage", [5, 10])
async def test_auto_no_stop_places_the_stop_once_instead_of_reducing(
    sessions: async_sessionmaker[AsyncSession], leverage: int
) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=leverage, stop=None, targets=[])
    w.market.set("SOL", 100.5)  # in profit: the no-stop tier reduces (a third at 5x, half at 10x)
    reports = await w.cycles()
    done = placed(reports)
    assert [e.result.kind for e in done if e.result] == [IntentKind.SET_STOP]
    position = await w.position()
    assert position is not None and position.size == Decimal(10)  # not reduced, cycle after cycle
    assert position.stop_loss == Decimal("97.5")  # 1.5 ATR below price: no structural stop was known
    assert w.notifier.approvals == []
    assert reports[1].decisions[0].action == "HOLD"  # the position has a stop: the no-stop tier is quiet


class NoStopOrders:
    """A paper account whose exchange refuses stop orders (the auto-mode stop cannot be placed)."""

    def __init__(self, paper: PaperAccount) -> None:
        self.paper = paper
        self.exchange_id, self.simulated = paper.exchange_id, True

    async def positions(self, symbol: str | None = None) -> list[Position]:
        return await self.paper.positions(symbol)

    async def place(self, intent: OrderIntent) -> PlaceResult:
        if intent.kind is IntentKind.SET_STOP:
            raise ExchangeUnavailableError("stop orders are not available right now")
        return await self.paper.place(intent)


async def test_auto_no_stop_reduces_once_when_the_stop_cannot_be_placed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=5, stop=None, targets=[])
    w.monitor.open_account = lambda _row: _ready(NoStopOrders(w.paper))
    w.market.set("SOL", 100.5)
    reports = await w.cycles()
    done = placed(reports)
    assert [e.result.kind for e in done if e.result] == [IntentKind.CLOSE]
    position = await w.position()
    assert position is not None and position.size == Decimal("6.7")  # 10 → 6.7 once, never 4.49, 3.0, …
    failed = [e for r in reports for e in r.executions if e.status == "failed"]
    assert len(failed) == 1  # the stop was tried once, not every cycle


async def _ready(account: Any) -> Any:
    return account


async def test_auto_structure_break_low_volume_reduces_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=3, stop=96.0, targets=[110.0])
    w.market.set("SOL", 99.2)
    w.views.structure = report(close=99.2, major_breaks=[level(99.5, 3, "resistance", broken="down")])
    w.views.volume_ratio = 0.8
    reports = await w.cycles()
    done = placed(reports)
    once_each(done)
    assert [d.rule for d in reports[0].decisions] == ["structure_break_low_volume"]
    assert len(orders_of(done, IntentKind.CLOSE)) == 1
    position = await w.position()
    assert position is not None and position.size == Decimal(5)
    assert w.notifier.approvals == []


async def test_auto_take_profit_at_t1_and_t2_once_each(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=1, stop=96.0, targets=[108.0, 112.0, 130.0])
    w.market.set("SOL", 108.1)
    at_t1 = await w.cycles()
    w.market.set("SOL", 112.1)
    at_t2 = await w.cycles()
    done = placed(at_t1 + at_t2)
    once_each(done)
    closes = orders_of(done, IntentKind.CLOSE)
    assert len(closes) == 2, [e.intent_id for e in done]
    assert ":T1" in closes[0].intent_id and ":T2" in closes[1].intent_id
    position = await w.position()
    assert position is not None and position.size == Decimal("3.9")  # 10 → 6 (40%) → 3.9 (35%)
    assert (await w.plan()).targets_hit == 2
    assert w.notifier.approvals == []


async def test_auto_early_partial_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=1, stop=96.0, targets=[110.0])
    w.market.set("SOL", 102.2)  # 0.55R before T1
    reports = await w.cycles(1)
    await w.forget()  # the next cycles find the order by its intent id, whatever the minute
    reports += await w.cycles(CYCLES - 1)
    done = placed(reports)
    once_each(done)
    assert reports[0].decisions[0].rule == "early_partial"
    assert len(orders_of(done, IntentKind.CLOSE)) == 1
    position = await w.position()
    assert position is not None and position.size == Decimal(5)


async def test_auto_near_t1_with_leverage_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=5, stop=80.0, targets=[108.0, 112.0])
    w.market.set("SOL", 107.6)
    reports = await w.cycles(1)
    await w.forget()  # the next cycles find the order by its intent id, whatever the minute
    reports += await w.cycles(CYCLES - 1)
    done = placed(reports)
    once_each(done)
    assert reports[0].decisions[0].rule == "near_t1_leverage"
    assert len(orders_of(done, IntentKind.CLOSE)) == 1
    position = await w.position()
    assert position is not None and position.size == Decimal(6)


# --- advise mode: one approval per condition ---------------------------------------------------------


SCENARIOS = {
    "no_stop_5x": dict(leverage=5, stop=None, targets=[], price=100.5),
    "no_stop_10x": dict(leverage=10, stop=None, targets=[], price=100.5),
    "structure_break_low_volume": dict(leverage=3, stop=96.0, targets=[110.0], price=99.2, broken=True),
    "take_profit": dict(leverage=1, stop=96.0, targets=[108.0, 112.0, 130.0], price=108.1),
    "early_partial": dict(leverage=1, stop=96.0, targets=[110.0], price=102.2),
    "near_t1_leverage": dict(leverage=5, stop=80.0, targets=[108.0, 112.0], price=107.6),
}


@pytest.mark.parametrize("rule", list(SCENARIOS))
async def test_advise_asks_once_per_condition(sessions: async_sessionmaker[AsyncSession], rule: str) -> None:
    sc = SCENARIOS[rule]
    w = await world(sessions, AccountMode.ADVISE, leverage=sc["leverage"], stop=sc["stop"], targets=sc["targets"])
    w.market.set("SOL", sc["price"])
    if sc.get("broken"):
        w.views.structure = report(close=sc["price"], major_breaks=[level(99.5, 3, "resistance", broken="down")])
        w.views.volume_ratio = 0.8
    reports = await w.cycles(step=timedelta(minutes=20))  # each approval expires before the next cycle
    assert [d.rule for _, _, d in w.notifier.approvals] == [rule]
    assert all(r.executions == [] for r in reports)
    position = await w.position()
    assert position is not None and position.size == Decimal(10)  # nothing placed without a press


# --- duplicates never become approvals -----------------------------------------------------------------


async def test_a_duplicate_inside_one_minute_asks_for_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=3, stop=96.0, targets=[110.0])
    w.market.set("SOL", 99.2)
    w.views.structure = report(close=99.2, major_breaks=[level(99.5, 3, "resistance", broken="down")])
    w.views.volume_ratio = 0.8
    first = await w.monitor.run_cycle()
    assert [e.status for e in first.executions] == ["placed"]
    # The process died after the order and before the plan recorded it: the next cycle finds the order by its
    # intent id (a duplicate) and must neither place it again nor ask the person to approve what just ran.
    await w.forget()
    w.clock["now"] += timedelta(seconds=20)
    second = await w.monitor.run_cycle()
    assert [e.status for e in second.executions] == ["duplicate"]
    assert w.notifier.approvals == []
    position = await w.position()
    assert position is not None and position.size == Decimal(5)
    assert (await w.plan()).handled  # remembered again
    third = await w.monitor.run_cycle()
    assert third.executions == [] and w.notifier.approvals == []


async def test_a_refused_action_is_proposed_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    strict = GuardLimits(min_confidence=0.9)  # above the low-volume break's calibrated confidence: refused
    w = await world(sessions, AccountMode.AUTO, leverage=3, stop=96.0, targets=[110.0], limits=strict)
    w.market.set("SOL", 99.2)
    w.views.structure = report(close=99.2, major_breaks=[level(99.5, 3, "resistance", broken="down")])
    w.views.volume_ratio = 0.8
    reports = await w.cycles()
    assert [e.status for r in reports for e in r.executions] == ["refused"]
    assert [d.rule for _, _, d in w.notifier.approvals] == ["structure_break_low_volume"]


async def test_a_new_position_is_a_new_epoch(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=1, stop=96.0, targets=[110.0])
    w.market.set("SOL", 102.2)
    first = placed(await w.cycles(2))
    assert [e.result.kind for e in first if e.result][:1] == [IntentKind.CLOSE]
    # Closed by hand and re-entered at another price: the early partial applies to the new position again.
    await w.paper.place(
        OrderIntent(
            intent_id="close",
            account_ref="t",
            symbol=SYMBOL,
            kind=IntentKind.CLOSE,
            side=Side.SELL,
            close_pct=Decimal(100),
            reduce_only=True,
        )
    )
    w.market.set("SOL", 101.0)
    await w.paper.place(
        OrderIntent(
            intent_id="open-2",
            account_ref="t",
            symbol=SYMBOL,
            kind=IntentKind.OPEN,
            side=Side.BUY,
            amount=Decimal(10),
            leverage=1,
        )
    )
    await w.monitor.run_cycle()  # a fresh plan: targets from structure (none here), no stop
    async with sessions.begin() as s:
        plan = await engine_repo.get_plan(s, w.row.id or 0, SYMBOL, "long")
        assert plan is not None and plan.epoch == 1 and plan.entry == 101.0
        plan.stop = plan.initial_stop = 97.0
        plan.targets = [110.0]
        await engine_repo.save_plan(s, plan)
    w.market.set("SOL", 103.0)  # 0.5R of the new position
    again = placed(await w.cycles(3))
    closes = orders_of(again, IntentKind.CLOSE)
    assert len(closes) == 1 and closes[0].intent_id not in {e.intent_id for e in first}


async def test_an_approved_take_profit_counts_its_target(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.ADVISE, leverage=1, stop=96.0, targets=[108.0, 112.0, 130.0])
    w.market.set("SOL", 108.1)
    await w.cycles(1, step=timedelta(seconds=10))
    ((user_id, approval, decision),) = w.notifier.approvals
    assert (decision.rule, decision.condition) == ("take_profit", "T1")
    async with sessions.begin() as s:
        consumed = await approvals_repo.consume_approval(s, approval.token, user_id, now=w.clock["now"])
    assert consumed.approval is not None
    outcome = await execute_proposal(w.monitor.executor, sessions, lambda _row: _ready(w.paper), consumed.approval)
    assert outcome.placed
    assert (await w.plan()).targets_hit == 1  # T1 taken by the press: the monitor aims at T2 now
    await w.cycles()
    w.market.set("SOL", 112.1)
    await w.cycles()
    proposed = [(d.action, d.rule, d.condition) for _, _, d in w.notifier.approvals]
    assert proposed.count(("TP_PARTIAL", "take_profit", "T1")) == 1
    assert proposed.count(("TP_PARTIAL", "take_profit", "T2")) == 1


async def test_a_proposal_shows_absolute_sizes_and_a_changed_position_refuses_its_press(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = await world(sessions, AccountMode.ADVISE, leverage=1, stop=96.0, targets=[108.0, 112.0, 130.0])
    w.market.set("SOL", 108.1)
    await w.cycles(1, step=timedelta(seconds=10))
    ((user_id, approval, decision),) = w.notifier.approvals
    assert decision.action == "TP_PARTIAL"
    amount = Decimal(10) * Decimal(str(decision.effective_close_pct)) / 100
    assert f"close {format(amount.normalize(), 'f')} of 10 SOL" in approval.summary
    assert approval.intent["size"] == "10"
    # The trader closes 2 SOL by hand before pressing: the proposal no longer matches the position.
    await w.paper.place(
        OrderIntent(
            intent_id="manual-trim",
            account_ref="t",
            symbol=SYMBOL,
            kind=IntentKind.CLOSE,
            side=Side.SELL,
            amount=Decimal(2),
            reduce_only=True,
        )
    )
    async with sessions.begin() as s:
        consumed = await approvals_repo.consume_approval(s, approval.token, user_id, now=w.clock["now"])
    assert consumed.approval is not None
    outcome = await execute_proposal(w.monitor.executor, sessions, lambda _row: _ready(w.paper), consumed.approval)
    assert outcome.status == "refused"
    assert "now 8 SOL, not the 10 SOL shown" in outcome.message
    position = await w.position()
    assert position is not None and position.size == Decimal(8)  # nothing placed by the press
    async with sessions() as s:
        row = await approvals_repo.get_approval(s, approval.token)
    assert row is not None and row.result is not None and row.result["status"] == "refused"


async def test_each_automated_action_is_explained(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=5, stop=None, targets=[])
    w.market.set("SOL", 100.5)
    (first,) = await w.cycles(1)
    (line,) = first.actions
    assert line.startswith("SOL/USDT:USDT long: ") and line.endswith("→ placed") and "(" in line


async def test_a_kill_switch_refusal_is_named_in_the_cycle(sessions: async_sessionmaker[AsyncSession]) -> None:
    killed = await world(sessions, AccountMode.AUTO, leverage=5, stop=None, targets=[])
    async with sessions.begin() as s:
        await engine_repo.set_kill_switch(s, engine_repo.GLOBAL, True, "operator")
    killed.market.set("SOL", 100.5)
    (report_,) = await killed.cycles(1)
    assert report_.actions and all("→ refused" in a and "kill switch" in a.lower() for a in report_.actions)


async def test_advise_asks_one_question_per_action_while_it_pends(sessions: async_sessionmaker[AsyncSession]) -> None:
    """A trail that moves every cycle is a new condition each time; while its request pends, no second one."""
    w = await world(sessions, AccountMode.ADVISE, leverage=1, stop=96.0, targets=[104.0, 130.0])
    async with sessions.begin() as s:
        plan = await w.plan()
        plan.targets_hit = 1  # T1 taken: no early partial, no take profit before T2
        await engine_repo.save_plan(s, plan)
    w.monitor.approval_ttl = timedelta(hours=2)  # outlives six 20-minute cycles
    reports = []
    for i in range(CYCLES):
        w.market.set("SOL", 106.0 + 0.5 * i)  # 1.5R and rising: the trail follows the price
        reports += await w.cycles(1)
    stops = [d.new_stop for r in reports for d in r.decisions]
    assert all(d.action == "TRAIL_STOP" for r in reports for d in r.decisions)
    assert len(set(stops)) == CYCLES  # a new stop, so a new condition, every cycle
    asked = [(d.action, d.new_stop) for _, _, d in w.notifier.approvals]
    # The first request, then (once it expired at 2 h, the seventh cycle) one for the trail of that moment.
    assert asked == [("TRAIL_STOP", stops[0]), ("TRAIL_STOP", stops[6])]
    assert all(r.executions == [] for r in reports)
