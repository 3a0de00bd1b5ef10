"""Executor: guards under random decision sequences, kill switch mid-cycle, persistence, idempotency, faults."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import Executor
from engine.execution.guards import GuardLimits
from engine.risk.decision import Decision
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import AccountMode, ExchangeAccount
from storage.repositories import accounts, audit
from storage.repositories import engine as engine_repo
from storage.repositories.users import get_or_create_user
from tools.exchange.errors import InsufficientFundsError
from tools.exchange.models import (
    IntentKind,
    Order,
    OrderIntent,
    OrderStatus,
    PlaceResult,
    Position,
    PositionSide,
    Side,
)

LIMITS = GuardLimits(max_close_pct=50.0, min_confidence=0.7, max_actions_per_hour=4, daily_loss_limit_usd=100.0)
POSITION = Position(symbol="SOL/USDT:USDT", side=PositionSide.LONG, size=Decimal(10), entry_price=Decimal(100))


class FakeAccount:
    """Records intents; each close fills at `fill_price` (a loss below entry 100)."""

    exchange_id = "paper"
    simulated = True

    def __init__(self, fill_price: Decimal = Decimal(95), fail: Exception | None = None) -> None:
        self.placed: list[OrderIntent] = []
        self.fill_price = fill_price
        self.fail = fail
        self.before_place: list = []
        self.live: list[Position] = [POSITION]
        self.found: PlaceResult | Exception | None = None
        self.lookups: list[str] = []

    async def positions(self, symbol: str | None = None) -> list[Position]:
        return [p for p in self.live if symbol is None or p.symbol == symbol]

    async def find_intent(self, intent: OrderIntent) -> PlaceResult | None:
        self.lookups.append(intent.intent_id)
        if isinstance(self.found, Exception):
            raise self.found
        return self.found

    async def place(self, intent: OrderIntent) -> PlaceResult:
        for hook in self.before_place:
            await hook(intent)
        if self.fail:
            raise self.fail
        self.placed.append(intent)
        filled = POSITION.size * (intent.close_pct or Decimal(100)) / 100 if intent.kind is IntentKind.CLOSE else 0
        order = Order(
            id=f"o{len(self.placed)}",
            client_order_id=intent.intent_id,
            symbol=intent.symbol,
            side=Side.SELL,
            type="market",
            status=OrderStatus.CLOSED,
            filled=Decimal(filled),
            average=self.fill_price,
            fee=Decimal(0),
        )
        return PlaceResult(intent_id=intent.intent_id, kind=intent.kind, orders=[order], message="filled")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _account(
    sessions: async_sessionmaker[AsyncSession], mode: AccountMode = AccountMode.AUTO, armed: bool = True
) -> ExchangeAccount:
    async with sessions.begin() as s:
        user = await get_or_create_user(s, "telegram", "7")
        assert user.id
        row = await accounts.add_account(s, None, user_id=user.id, exchange_id="paper", label="p", credentials={})
        assert row.id
        return await engine_repo.set_account_mode(s, row.id, mode=mode, armed=armed)


def decision(action: str = "REDUCE_SIZE", pct: float | None = 30.0, confidence: float = 0.9) -> Decision:
    """A rules decision whose calibrated confidence (what the guards compare) is `confidence`."""
    return Decision(
        action=action,  # type: ignore[arg-type]
        confidence=confidence,
        calibrated_confidence=confidence,
        reasoning="test",
        close_pct=pct,
        rule="test",
    )


async def test_places_once_per_intent(sessions: async_sessionmaker[AsyncSession]) -> None:
    row = await _account(sessions)
    account = FakeAccount()
    ex = Executor(sessions, LIMITS)
    first = await ex.execute(
        row=row, account=account, position=POSITION, decision=decision(), intent_id="i-1", automated=True
    )
    again = await ex.execute(
        row=row, account=account, position=POSITION, decision=decision(), intent_id="i-1", automated=True
    )
    assert first.placed and again.status == "duplicate"
    assert len(account.placed) == 1
    assert account.placed[0].reduce_only and account.placed[0].close_pct == Decimal("30.0")
    assert first.realised_pnl == -15.0  # 3 units closed 5 below entry
    async with sessions() as s:
        kinds = [e.kind for e in await audit.entries(s, ref="i-1")]
    assert kinds == ["exchange_response", "order_request"]


async def test_concurrent_same_intent_places_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    row = await _account(sessions)
    account = FakeAccount()
    executors = [Executor(sessions, LIMITS) for _ in range(5)]  # separate locks: only the database guards
    outcomes = await asyncio.gather(
        *(
            e.execute(
                row=row, account=account, position=POSITION, decision=decision(), intent_id="same", automated=False
            )
            for e in executors
        )
    )
    assert sum(o.placed for o in outcomes) == 1 and len(account.placed) == 1


async def test_actions_on_one_account_never_interleave_and_leave_no_lock_behind(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    row = await _account(sessions)
    account = FakeAccount()
    ex = Executor(sessions, LIMITS)
    placing: list[str] = []
    overlaps: list[str] = []

    async def slow(intent: OrderIntent) -> None:
        if placing:
            overlaps.append(intent.intent_id)
        placing.append(intent.intent_id)
        await asyncio.sleep(0.02)
        placing.remove(intent.intent_id)

    account.before_place.append(slow)
    small = decision(pct=10.0)
    outcomes = await asyncio.gather(
        *(
            ex.execute(row=row, account=account, position=POSITION, decision=small, intent_id=f"i-{n}", automated=True)
            for n in range(2)
        )
    )
    assert all(o.placed for o in outcomes) and overlaps == []
    assert len(ex.locks) == 0  # the account's lock went with its last user, not kept for every account ever seen


async def test_kill_switch_set_during_cycle_stops_later_orders(sessions: async_sessionmaker[AsyncSession]) -> None:
    row = await _account(sessions)
    account = FakeAccount(fill_price=Decimal(101))

    async def kill_after_first(intent: OrderIntent) -> None:
        if intent.intent_id == "c-0":
            async with sessions.begin() as s:
                await engine_repo.set_kill_switch(s, engine_repo.GLOBAL, True, "operator")

    account.before_place.append(kill_after_first)
    ex = Executor(sessions, LIMITS)
    outcomes = [
        await ex.execute(
            row=row, account=account, position=POSITION, decision=decision(pct=10), intent_id=f"c-{i}", automated=True
        )
        for i in range(4)
    ]
    assert [o.status for o in outcomes] == ["placed", "refused", "refused", "refused"]
    assert "kill switch engaged (global)" in outcomes[1].reasons
    # A human's explicit approval is not an automated action: it still goes through.
    manual = await ex.execute(
        row=row, account=account, position=POSITION, decision=decision(), intent_id="m-1", automated=False
    )
    assert manual.placed


async def test_failure_is_recorded_and_nothing_filled(sessions: async_sessionmaker[AsyncSession]) -> None:
    row = await _account(sessions)
    account = FakeAccount(fail=InsufficientFundsError())
    out = await Executor(sessions, LIMITS).execute(
        row=row, account=account, position=POSITION, decision=decision(), intent_id="f-1", automated=True
    )
    assert out.status == "failed" and "Insufficient funds" in out.message
    async with sessions() as s:
        record = await engine_repo.get_execution(s, "f-1")
        assert record is not None and record.status == "failed" and record.realised_pnl is None
        assert [e.kind for e in await audit.entries(s, ref="f-1")] == ["error", "order_request"]


async def test_read_only_and_advise_accounts_are_not_traded_automatically(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    row = await _account(sessions, mode=AccountMode.ADVISE, armed=False)
    account = FakeAccount()
    ex = Executor(sessions, LIMITS)
    auto = await ex.execute(
        row=row, account=account, position=POSITION, decision=decision(), intent_id="a", automated=True
    )
    assert auto.status == "refused"
    assert {"account mode is advise, not auto", "account is not armed (read-only)"} <= set(auto.reasons)
    manual = await ex.execute(
        row=row, account=account, position=POSITION, decision=decision(), intent_id="b", automated=False
    )
    assert manual.status == "refused" and "read-only" in manual.message
    assert account.placed == []


async def test_kill_switch_and_modes_survive_restart(db_url: str) -> None:
    engine = create_engine(db_url)
    await migrate.upgrade(engine)
    row = await _account(session_factory(engine), mode=AccountMode.AUTO, armed=True)
    async with session_factory(engine).begin() as s:
        await engine_repo.set_kill_switch(s, engine_repo.user_scope(row.user_id), True, "user pressed kill")
    await engine.dispose()

    restarted = create_engine(db_url)  # a new process would build exactly this
    try:
        ex = Executor(session_factory(restarted), LIMITS)
        state = await ex.guard_state(row)
        assert state.mode == "auto" and state.armed
        assert state.kill_switches == ("telegram:7",)  # the user's switch, named as people name the user
    finally:
        await restarted.dispose()


async def test_hourly_and_daily_limits_release_in_time(sessions: async_sessionmaker[AsyncSession]) -> None:
    row = await _account(sessions)
    clock = Clock()
    account = FakeAccount(fill_price=Decimal(99))  # -1 per unit: 3 units per 30% close → -3 each
    ex = Executor(sessions, LIMITS, clock=clock)

    async def run(i: int, pct: float = 30) -> str:
        out = await ex.execute(
            row=row, account=account, position=POSITION, decision=decision(pct=pct), intent_id=f"h-{i}", automated=True
        )
        return out.status

    assert [await run(i) for i in range(5)] == ["placed"] * 4 + ["refused"]
    clock.now += timedelta(minutes=61)
    assert await run(5) == "placed"
    account.fill_price = Decimal(60)  # a 50% close at 60 realises -200: past the daily limit
    clock.now += timedelta(minutes=61)
    assert await run(6, pct=50) == "placed"
    clock.now += timedelta(minutes=61)
    assert await run(7) == "refused"
    clock.now = clock.now.replace(hour=0) + timedelta(days=1, minutes=1)  # a new day
    assert await run(8) == "placed"


ACTIONS = st.sampled_from(["REDUCE_SIZE", "TP_PARTIAL", "EXIT_FULL", "EMERGENCY_EXIT", "TP_FULL", "HOLD"])


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.tuples(ACTIONS, st.floats(1, 100), st.floats(0.5, 1.0), st.integers(0, 40)), min_size=1, max_size=25)
)
def test_no_sequence_breaks_the_guards(steps: list[tuple[str, float, float, int]]) -> None:
    asyncio.run(_guard_scenario(steps))


async def _guard_scenario(steps: list[tuple[str, float, float, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'g.db'}")
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        row = await _account(sessions)
        clock = Clock()
        account = FakeAccount(fill_price=Decimal(90))  # every close realises a loss of 10 per unit
        ex = Executor(sessions, LIMITS, clock=clock)
        placed_at: list[datetime] = []
        loss = 0.0
        for i, (action, pct, conf, minutes) in enumerate(steps):
            clock.now += timedelta(minutes=minutes)
            loss_before = loss
            out = await ex.execute(
                row=row,
                account=account,
                position=POSITION,
                decision=decision(action, pct, conf),
                intent_id=f"s-{i}",
                automated=True,
            )
            if out.placed:
                intent = account.placed[-1]
                assert intent.close_pct is not None and intent.close_pct <= Decimal(LIMITS.max_close_pct)
                assert conf >= LIMITS.min_confidence
                assert loss_before < LIMITS.daily_loss_limit_usd  # nothing goes out once the day's limit is hit
                placed_at.append(clock.now)
                loss -= out.realised_pnl or 0.0
                recent = [t for t in placed_at if t > clock.now - timedelta(hours=1)]
                assert len(recent) <= LIMITS.max_actions_per_hour
        await engine.dispose()


def test_hard_exits_are_exempt_from_discretionary_limits_but_not_the_kill_switch() -> None:
    from engine.execution.guards import GuardState, check_automated

    hard = Decision(action="EMERGENCY_EXIT", confidence=0.5, reasoning="stop breached", rule="stop_breached", hard=True)
    busy = GuardState(mode="auto", armed=True, actions_last_hour=99, realised_pnl_today=-10_000)
    verdict = check_automated(hard, busy, LIMITS)
    assert verdict.allowed and verdict.close_pct == 100.0
    soft = hard.model_copy(update={"hard": False, "action": "EXIT_FULL"})
    assert not check_automated(soft, busy, LIMITS).allowed
    killed = GuardState(mode="auto", armed=True, kill_switches=("global",))
    assert not check_automated(hard, killed, LIMITS).allowed


CLOSE_5 = OrderIntent(
    intent_id="appr:t", account_ref="account:1", symbol="SOL/USDT:USDT", kind=IntentKind.CLOSE, amount=Decimal(5)
)


async def test_executor_refuses_an_owner_who_may_not_trade_now(sessions: async_sessionmaker[AsyncSession]) -> None:
    from engine.access import AccessPolicy
    from storage.models import User

    row = await _account(sessions)  # owned by telegram:7, who has no role and is not allowed by settings
    account = FakeAccount()
    ex = Executor(sessions, LIMITS, access=AccessPolicy())
    manual = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=POSITION, action="manual_close"
    )
    auto = await ex.execute(
        row=row, account=account, position=POSITION, decision=decision(), intent_id="a-1", automated=True
    )
    assert manual.status == auto.status == "refused" and account.placed == []
    assert "limited to allowed users" in manual.message
    async with sessions() as s:
        assert [e.kind for e in await audit.entries(s, ref="appr:t")] == ["access_refused"]
        assert await engine_repo.get_execution(s, "appr:t") is None
    async with sessions.begin() as s:  # granted now: the next press is placed (the check is fresh, not cached)
        user = await s.get(User, row.user_id)
        assert user is not None
        user.roles = ["trader"]
    again = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=POSITION, action="manual_close"
    )
    assert again.placed and len(account.placed) == 1
    async with sessions.begin() as s:  # revoked again: refused at once
        user = await s.get(User, row.user_id)
        assert user is not None
        user.roles = []
    later = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5.model_copy(update={"intent_id": "appr:u"}), position=POSITION,
        action="manual_close",
    )
    assert later.status == "refused" and len(account.placed) == 1


async def test_a_press_is_refused_when_the_position_changed_since_it_was_shown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    row = await _account(sessions)
    account = FakeAccount()
    ex = Executor(sessions, LIMITS)
    account.live = [POSITION.model_copy(update={"size": Decimal(7)})]  # 3 SOL were closed before the press
    out = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=None, action="manual_close", shown=POSITION
    )
    assert out.status == "refused" and account.placed == []
    assert "now 7 SOL, not the 10 SOL shown" in out.message
    account.live = []
    gone = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=None, action="manual_close", shown=POSITION
    )
    assert gone.status == "refused" and "no longer open" in gone.message and account.placed == []
    async with sessions() as s:
        assert await engine_repo.get_execution(s, "appr:t") is None
    account.live = [POSITION.model_copy(update={"size": Decimal("10.04")})]  # within 0.5%: what was shown
    ok = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=None, action="manual_close", shown=POSITION
    )
    assert ok.placed and [i.amount for i in account.placed] == [Decimal(5)]


async def _stale_pending(sessions: async_sessionmaker[AsyncSession], row: ExchangeAccount, clock: Clock) -> None:
    async with sessions.begin() as s:  # what a process killed between claim and finish leaves behind
        assert await engine_repo.claim_execution(
            s,
            intent_id=CLOSE_5.intent_id,
            account_id=row.id,
            symbol=CLOSE_5.symbol,
            action="manual_close",
            intent=CLOSE_5.model_dump(mode="json"),
            created_at=clock.now - timedelta(minutes=5),
        )


async def test_a_retry_settles_an_interrupted_execution_by_client_order_id_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from tools.exchange.errors import OrderStatusUnknownError

    row = await _account(sessions)
    clock = Clock()
    account = FakeAccount()
    ex = Executor(sessions, LIMITS, clock=clock)
    await _stale_pending(sessions, row, clock)

    # The exchange cannot be asked: unknown, the row stays pending, nothing is placed.
    account.found = OrderStatusUnknownError()
    unknown = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=POSITION, action="manual_close"
    )
    assert unknown.status == "unknown" and "checking with the exchange" in unknown.message and account.placed == []
    # The exchange has no such order: settled not placed, then placed by this retry, once.
    account.found = None
    placed = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=POSITION, action="manual_close"
    )
    again = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=POSITION, action="manual_close"
    )
    assert placed.placed and again.status == "duplicate" and len(account.placed) == 1
    assert account.lookups == ["appr:t", "appr:t"]
    async with sessions() as s:
        record = await engine_repo.get_execution(s, "appr:t")
        assert record is not None and record.status == "done"


async def test_a_retry_finds_the_order_an_interrupted_attempt_placed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    row = await _account(sessions)
    clock = Clock()
    account = FakeAccount()
    ex = Executor(sessions, LIMITS, clock=clock)
    await _stale_pending(sessions, row, clock)
    order = Order(
        id="x1", symbol=CLOSE_5.symbol, side=Side.SELL, type="market", status=OrderStatus.CLOSED, filled=Decimal(5),
        average=Decimal(95), fee=Decimal(0),
    )
    account.found = PlaceResult(intent_id="appr:t", kind=IntentKind.CLOSE, orders=[order], duplicate=True)
    fresh = clock.now
    clock.now = fresh - timedelta(minutes=4, seconds=30)  # 30 s after the claim: maybe still in flight elsewhere
    early = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=POSITION, action="manual_close"
    )
    assert early.status == "unknown" and account.lookups == [] and account.placed == []
    clock.now = fresh
    out = await ex.execute_approved_intent(
        row=row, account=account, intent=CLOSE_5, position=POSITION, action="manual_close"
    )
    assert out.status == "duplicate" and "found on the exchange" in out.message and account.placed == []
    async with sessions() as s:
        record = await engine_repo.get_execution(s, "appr:t")
        assert record is not None and record.status == "done" and record.result is not None
