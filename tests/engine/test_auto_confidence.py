"""Auto mode acts only where the calibrated confidence clears the minimum, once over ten cycles; a refused action is
proposed once and its button press is not held to the minimum; protective hard rules act whatever the minimum."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.guards import GuardLimits
from engine.execution.proposals import execute_proposal
from engine.risk.calibration import ConfidenceTable, shipped_table
from storage.models import AccountMode
from storage.repositories import approvals as approvals_repo
from tests.engine.test_monitor_once import CYCLES, _ready, once_each, orders_of, placed, world
from tools.exchange.models import IntentKind

EARLY_PARTIAL = dict(leverage=1, stop=96.0, targets=[110.0])  # at 102.2: 0.55R before T1, the early partial
NOTHING_GOVERNED = GuardLimits(min_confidence=1.0)  # no calibrated confidence reaches 1.0


def _early_partial_confidence() -> float:
    """The calibrated confidence the live engine reports for the early partial (the shipped table's)."""
    table = shipped_table()
    assert table is not None
    return table.confidence("early_partial")


async def test_auto_acts_once_where_the_calibrated_confidence_clears_the_minimum(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A table that measured the early partial above its own figure (0.6): the measured one decides, so it acts.
    measured = ConfidenceTable(table={"early_partial": 0.9}, default=0.0, produced_by="test")
    monkeypatch.setattr("engine.risk.evaluate.shipped_table", lambda: measured)
    w = await world(sessions, AccountMode.AUTO, **EARLY_PARTIAL, limits=GuardLimits(min_confidence=0.8))  # type: ignore[arg-type]
    w.market.set("SOL", 102.2)
    reports = await w.cycles()
    first = reports[0].decisions[0]
    assert len(reports) == CYCLES and first.rule == "early_partial"
    assert first.calibrated_confidence == 0.9 and first.confidence < 0.8
    done = placed(reports)
    once_each(done)
    assert len(done) == 1 and orders_of(done, IntentKind.CLOSE) == done  # the partial, once; the rest under 0.8
    refused = [e for r in reports for e in r.executions if e.status == "refused"]
    assert all(":early_partial:" not in e.intent_id for e in refused)  # never tried again
    position = await w.position()
    assert position is not None and position.size == Decimal(5)


async def test_auto_below_the_minimum_refuses_once_proposes_once_and_the_press_places_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    p = _early_partial_confidence()
    strict = GuardLimits(min_confidence=round(p + 0.01, 4))
    w = await world(sessions, AccountMode.AUTO, **EARLY_PARTIAL, limits=strict)  # type: ignore[arg-type]
    w.monitor.approval_ttl = timedelta(hours=6)  # the request outlives the ten cycles: the press comes after them
    w.market.set("SOL", 102.2)
    reports = await w.cycles()
    outcomes = [e for r in reports for e in r.executions]
    assert [e.status for e in outcomes] == ["refused"]
    assert outcomes[0].reasons == [f"calibrated confidence {p:.4g} below the minimum {strict.min_confidence:.4g}"]
    ((user_id, approval, decision),) = w.notifier.approvals
    assert decision.rule == "early_partial"
    position = await w.position()
    assert position is not None and position.size == Decimal(10)  # nothing placed without the press
    # The owner's press is a person's decision: the minimum governs automated execution only.
    async with sessions.begin() as s:
        consumed = await approvals_repo.consume_approval(s, approval.token, user_id, now=w.clock["now"])
    assert consumed.approval is not None
    outcome = await execute_proposal(w.monitor.executor, sessions, lambda _row: _ready(w.paper), consumed.approval)
    assert outcome.placed
    position = await w.position()
    assert position is not None and position.size == Decimal(5)
    after = await w.cycles()
    again = [e for r in after for e in r.executions if ":early_partial:" in e.intent_id]
    asked = [d for _, _, d in w.notifier.approvals if d.rule == "early_partial"]
    assert again == [] and len(asked) == 1  # done by the press: neither executed nor asked again


async def test_a_breached_stop_exits_once_whatever_the_minimum(sessions: async_sessionmaker[AsyncSession]) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=3, stop=96.0, targets=[110.0], limits=NOTHING_GOVERNED)
    w.market.set("SOL", 95.5)
    reports = await w.cycles()
    done = placed(reports)
    once_each(done)
    assert [e.result.kind for e in done if e.result] == [IntentKind.CLOSE]
    assert reports[0].decisions[0].rule == "stop_breached"
    assert await w.position() is None
    assert w.notifier.approvals == []


async def test_the_protective_stop_is_placed_once_whatever_the_minimum(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = await world(sessions, AccountMode.AUTO, leverage=5, stop=None, targets=[], limits=NOTHING_GOVERNED)
    w.market.set("SOL", 100.5)  # 5x without a stop: auto mode places the suggested stop instead of reducing
    reports = await w.cycles()
    done = placed(reports)
    assert [e.result.kind for e in done if e.result] == [IntentKind.SET_STOP]
    position = await w.position()
    assert position is not None and position.size == Decimal(10) and position.stop_loss is not None
    assert w.notifier.approvals == []
