"""Guards across workers: two executors on one PostgreSQL (separate engines and locks, as two `bastion serve`
processes) never exceed the hourly action count or the daily loss, whatever the interleaving of their reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import Executor
from engine.execution.guards import GuardLimits
from storage import migrate
from storage.db import create_engine, session_factory
from storage.repositories import audit
from storage.repositories import engine as engine_repo
from tests.engine.test_executor import POSITION, FakeAccount, _account, decision

pytestmark = pytest.mark.postgres


@pytest.fixture
async def two_workers(postgres_url: str) -> AsyncIterator[list[async_sessionmaker[AsyncSession]]]:
    """Two engines (two connection pools) on one migrated PostgreSQL database."""
    engines = [create_engine(postgres_url) for _ in range(2)]
    await migrate.upgrade(engines[0])
    try:
        yield [session_factory(e) for e in engines]
    finally:
        for e in engines:
            await e.dispose()


def hold_first_read(monkeypatch: pytest.MonkeyPatch, name: str, until: Callable[[int], Awaitable[None]]) -> list[Any]:
    """Make the first `calls` reads of engine_repo.<name> wait for `until(n)` before returning what they read."""
    real = getattr(engine_repo, name)
    seen: list[Any] = []

    async def held(*args: Any, **kwargs: Any) -> Any:
        value = await real(*args, **kwargs)
        n = len(seen)
        seen.append(value)
        await until(n)
        return value

    monkeypatch.setattr(engine_repo, name, held)
    return seen


async def test_two_workers_never_exceed_the_hourly_action_count(
    two_workers: list[async_sessionmaker[AsyncSession]], monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = GuardLimits(max_actions_per_hour=1, min_confidence=0.5)  # the 0.9 decisions clear it
    row = await _account(two_workers[0])
    account = FakeAccount()
    both_read = asyncio.Barrier(2)

    async def until(n: int) -> None:
        if n < 2:  # both workers' first look at the counter: each sees 0 of 1 before either claims
            await asyncio.wait_for(both_read.wait(), timeout=5)

    hold_first_read(monkeypatch, "automated_actions_since", until)
    workers = [Executor(s, limits) for s in two_workers]
    outcomes = await asyncio.gather(
        *(
            w.execute(
                row=row, account=account, position=POSITION, decision=decision(), intent_id=f"w{i}", automated=True
            )
            for i, w in enumerate(workers)
        )
    )
    assert sorted(o.status for o in outcomes) == ["placed", "refused"]
    assert len(account.placed) == 1
    refused = next(o for o in outcomes if o.status == "refused")
    assert refused.reasons == ["1 automated actions in the last hour (limit 1)"]
    async with two_workers[1]() as s:
        assert [e.kind for e in await audit.entries(s, ref=refused.intent_id)] == ["guard_refused"]
        assert await engine_repo.get_execution(s, refused.intent_id) is None  # nothing claimed for it


async def test_a_loss_recorded_by_one_worker_stops_the_other_at_its_claim(
    two_workers: list[async_sessionmaker[AsyncSession]], monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = GuardLimits(max_actions_per_hour=10, daily_loss_limit_usd=100.0, min_confidence=0.5)
    row = await _account(two_workers[0])
    account = FakeAccount(fill_price=Decimal(40))  # a 30% close (3 units) at 40 realises -180: past the limit
    b_read, first_done = asyncio.Event(), asyncio.Event()

    async def until(n: int) -> None:
        if n == 0:  # worker B read today's PnL (0) and now waits while worker A closes at a loss
            b_read.set()
            await asyncio.wait_for(first_done.wait(), timeout=5)

    worker_a, worker_b = (Executor(s, limits) for s in two_workers)
    kwargs: dict[str, Any] = {"row": row, "account": account, "position": POSITION, "automated": True}
    late = asyncio.create_task(worker_b.execute(decision=decision(), intent_id="b", **kwargs))
    hold_first_read(monkeypatch, "realised_pnl_since", until)
    await asyncio.wait_for(b_read.wait(), timeout=5)
    monkeypatch.undo()  # worker A reads for real
    first = await worker_a.execute(decision=decision(), intent_id="a", **kwargs)
    assert first.placed and first.realised_pnl == -180.0
    first_done.set()
    second = await late
    assert second.status == "refused"
    assert second.reasons == ["daily realised loss 180.00 reached the limit 100.00"]
    assert [i.intent_id for i in account.placed] == ["a"]
