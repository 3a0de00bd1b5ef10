"""A trader's /close on an auto-mode account is a person's decision: the guards' confidence minimum, which governs
automated execution only, never holds it back, even set where nothing automated passes. An approval request shows
the confidence the guards compared."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bastion.app import Services, guard_limits
from bastion.settings import Settings
from bot.core.dispatcher import BotCore
from bot.core.notify import OutboxNotifier
from engine.risk.calibration import shipped_table
from engine.risk.decision import Decision
from storage.models import Outbox
from storage.repositories import approvals as approvals_repo
from tests.agents.test_entries import PINNED
from tests.bot.telegram_harness import ALICE, executions, sol_size, trader_with_sol_long
from tests.bot.test_access import core_with, press_of
from tests.bot.test_core import RecordingReplier, core_on, said

__all__ = ["core_on"]  # the fixture, imported for the approval test


async def test_close_from_chat_is_placed_on_an_auto_account_whatever_the_minimum(
    sqlite_url: str, tmp_path: Path
) -> None:
    fast = {"burst": 50, "rate_per_minute": 600}
    strict = {"min_confidence": 1.0}  # no calibrated confidence reaches it
    extra: dict[str, Any] = {"allowed_users": [f"telegram:{ALICE}"], "bot": fast, "risk": strict}
    async with core_with(sqlite_url, tmp_path, **extra) as (services, core):
        services.market.set_now(PINNED)  # type: ignore[attr-defined]  # a moment with an accepted SOL long plan
        replier = RecordingReplier()
        for text in ("/connect paper", "/arm auto"):
            await core.handle(said(ALICE, text), replier)
        await core.handle(said(ALICE, "/long sol 0.2 stop auto"), replier)
        await core.press(press_of(ALICE, replier.sent[-1].buttons[0].data.split(":")[1]), replier)  # type: ignore[arg-type]
        user_id = (await core.user("telegram", str(ALICE))).user_id
        assert await sol_size(services, user_id) == pytest.approx(0.2)
        await core.handle(said(ALICE, "/close sol"), replier)
        close = replier.sent[-1]
        assert close.text.startswith("Proposed order: Close"), close.text
        await core.press(press_of(ALICE, close.buttons[0].data.split(":")[1]), replier)  # type: ignore[arg-type]
        assert "Executed: Close" in replier.edits[-1][1].text, replier.edits[-1][1].text
        assert await executions(services) == 2 and await sol_size(services, user_id) == 0.0


def test_a_minimum_above_every_calibrated_confidence_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    table = shipped_table()
    assert table is not None
    top = max([*table.table.values(), table.default])
    with caplog.at_level(logging.WARNING, logger="bastion.app"):
        assert guard_limits(Settings(risk={"min_confidence": top})).min_confidence == top  # type: ignore[arg-type]
        assert not caplog.records
        assert guard_limits(Settings(risk={"min_confidence": 0.7})).min_confidence == 0.7  # type: ignore[arg-type]
    (record,) = caplog.records
    assert "above every calibrated confidence" in record.getMessage() and "0.70" in record.getMessage()


async def test_an_approval_request_shows_the_calibrated_confidence(core_on: tuple[Services, BotCore]) -> None:
    services, _core = core_on
    user_id = await trader_with_sol_long(services, ALICE)
    # The rule said 0.85; the backtest measured 0.10: the guards refused it on 0.10, so the person reads 10%.
    decision = Decision(
        action="TP_PARTIAL", confidence=0.85, calibrated_confidence=0.10, reasoning="x", close_pct=50, rule="r"
    )
    async with services.sessions.begin() as session:
        approval = await approvals_repo.create_approval(
            session,
            owner_user_id=user_id,
            intent={"symbol": "SOL/USDT:USDT", "side": "long", "action": "TP_PARTIAL", "close_pct": 50},
            summary="TAKE PROFIT 50% of SOL/USDT:USDT long (10)",
            ttl=timedelta(minutes=5),
            account_id=1,
        )
    notifier = OutboxNotifier(services.sessions, frozenset({"telegram"}))
    await notifier.request_approval(user_id, approval, decision)
    model = decision.model_copy(update={"calibrated_confidence": None, "source": "model", "confidence": 0.62})
    await notifier.request_approval(user_id, approval.model_copy(update={"token": "other"}), model)
    async with services.sessions() as session:
        texts = [row.payload["text"] for row in (await session.scalars(select(Outbox).order_by(col(Outbox.id)))).all()]
    assert len(texts) == 2
    assert "Confidence 10%." in texts[0] and "85%" not in texts[0]
    assert "Confidence 62%." in texts[1]  # a model decision: its own figure
