"""The access chain on every entry point: commands, free text and presses; closed trading; the bounded user cache."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from agents.state import TurnContext
from bastion.app import Services
from bastion.serve import build_core
from bot.core.dispatcher import BotCore
from bot.core.messages import ButtonPress
from storage.models import Approval
from storage.repositories import approvals as approvals_repo
from tests.bot.telegram_harness import ALICE, BOB, executions, sol_size, telegram_services, trader_with_sol_long
from tests.bot.test_core import RecordingReplier, grant_role, said, settings
from tools.agent_tools.registry import PUBLIC_TOOLS

CLOSE_HALF = "close half my sol long"


@asynccontextmanager
async def core_with(sqlite_url: str, tmp_path: Path, **extra: Any) -> AsyncIterator[tuple[Services, BotCore]]:
    """Services and a core from these settings (the analyst on a checkpoint file in tmp_path)."""
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    s = settings(sqlite_url, tmp_path, **extra)
    async with telegram_services(s) as services, sqlite_persistence(tmp_path / "cp.db") as persistence:
        chat = build_chat(services, persistence)
        yield services, build_core(services, chat, persistence.store)


@pytest.fixture
async def alice_only(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, BotCore]]:
    """Trading allowed for ALICE only (BOB has a paper account with a SOL long but no trading access)."""
    async with core_with(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"]) as pair:
        yield pair


async def approvals_count(services: Services) -> int:
    """How many approvals were ever requested."""
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Approval))).scalar_one())


def press_of(user: int, token: str, approve: bool = True) -> ButtonPress:
    """A press of an approval button in the user's private chat."""
    return ButtonPress("telegram", str(user), str(user), f"{user}:9", f"v1:{token}:{'y' if approve else 'n'}")


async def test_free_text_order_from_a_refused_user_gets_no_buttons(alice_only: tuple[Services, BotCore]) -> None:
    services, core = alice_only
    bob = await trader_with_sol_long(services, BOB)
    replier = RecordingReplier()
    await core.handle(said(BOB, "/close sol half"), replier)
    assert "limited to allowed users" in replier.sent[-1].text
    await core.handle(said(BOB, CLOSE_HALF), replier)
    final = (replier.edits[-1][1] if replier.edits else replier.sent[-1])
    assert not final.buttons and not any(o.buttons for o in replier.sent)
    assert "trading access" in final.text
    assert await approvals_count(services) == 0
    assert await executions(services) == 0 and await sol_size(services, bob) == pytest.approx(10.0)


async def test_personal_reads_follow_the_trading_rule(alice_only: tuple[Services, BotCore]) -> None:
    services, core = alice_only
    await trader_with_sol_long(services, BOB)
    replier = RecordingReplier()
    await core.handle(said(BOB, "/positions"), replier)
    assert "limited to allowed users" in replier.sent[-1].text
    for text in ("show my positions", "what is my balance"):
        await core.handle(said(BOB, text), replier)
        final = replier.edits[-1][1] if replier.edits else replier.sent[-1]
        assert "trading access" in final.text
        assert "SOL/USDT:USDT long" not in final.text and "total" not in final.text
    await trader_with_sol_long(services, ALICE)
    mine = RecordingReplier()
    await core.handle(said(ALICE, "show my positions"), mine)
    final = mine.edits[-1][1] if mine.edits else mine.sent[-1]
    assert "SOL/USDT:USDT long" in final.text  # the allowed user still sees theirs


async def test_press_by_a_user_without_trading_places_nothing(alice_only: tuple[Services, BotCore]) -> None:
    services, core = alice_only
    bob = await trader_with_sol_long(services, BOB)
    async with services.sessions.begin() as session:  # a monitor proposal that reached BOB before the change
        approval = await approvals_repo.create_approval(
            session,
            owner_user_id=bob,
            intent={"symbol": "SOL/USDT:USDT", "side": "long", "action": "TP_PARTIAL", "close_pct": 50,
                    "new_stop": None, "account_id": 1},
            summary="TAKE PROFIT 50% of SOL/USDT:USDT long (10): T1 reached",
            ttl=timedelta(minutes=5),
            account_id=1,
        )
    replier = RecordingReplier()
    await core.press(press_of(BOB, approval.token), replier)  # type: ignore[arg-type]
    assert "limited to allowed users" in replier.answers[-1] and not replier.edits
    assert await executions(services) == 0 and await sol_size(services, bob) == pytest.approx(10.0)
    await core.press(press_of(BOB, approval.token, approve=False), replier)  # rejecting is always allowed
    assert replier.answers[-1] == "Rejected." and await executions(services) == 0


async def test_role_revoked_between_proposal_and_press_refuses_the_press(
    alice_only: tuple[Services, BotCore],
) -> None:
    services, core = alice_only
    bob = await trader_with_sol_long(services, BOB)
    await grant_role(services, BOB, "trader")
    replier = RecordingReplier()
    await core.handle(said(BOB, CLOSE_HALF), replier)
    shown = replier.edits[-1][1] if replier.edits else replier.sent[-1]
    assert shown.buttons, shown.text  # a trader gets the proposal
    token = shown.buttons[0].data.split(":")[1]
    await grant_role(services, BOB)  # revoked in the database; the core's 60 s cache still says trader
    await core.press(press_of(BOB, token), replier)  # type: ignore[arg-type]
    assert "limited to allowed users" in replier.answers[-1]
    assert await executions(services) == 0 and await sol_size(services, bob) == pytest.approx(10.0)


async def test_risk_check_reads_the_role_fresh(alice_only: tuple[Services, BotCore]) -> None:
    services, core = alice_only
    bob = await trader_with_sol_long(services, BOB)
    # The channel believed BOB may trade (a stale view); the database says he may not at the proposal.
    ctx = TurnContext(user_id=bob, platform="telegram", chat_ref="telegram:bob", may_trade=True)
    reply = await core.chat.ask(ctx, ctx.chat_ref, CLOSE_HALF)
    assert reply.approval is None and "trading access" in reply.text
    assert await approvals_count(services) == 0


def test_users_without_trading_are_offered_public_tools_only() -> None:
    from agents.deps import AgentDeps
    from agents.offline import OfflineChatModel
    from tools.agent_tools import Toolkit

    toolkit = Toolkit(deps=None)  # type: ignore[arg-type]
    deps = AgentDeps(OfflineChatModel(), toolkit, None, None, None, "")  # type: ignore[arg-type]
    public = deps.bound_for(False).tool_names  # type: ignore[attr-defined]
    assert set(public) == PUBLIC_TOOLS
    assert not {"get_positions", "get_balance", "evaluate_position", "propose_order"} & set(public)
    assert "propose_order" in deps.bound_for(True).tool_names  # type: ignore[attr-defined]


async def test_trading_is_closed_by_default_and_start_up_says_how_to_open_it(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bastion.serve"):
        async with core_with(sqlite_url, tmp_path) as (services, core):
            alice = await trader_with_sol_long(services, ALICE)
            replier = RecordingReplier()
            await core.handle(said(ALICE, "/close sol half"), replier)
            assert "limited to allowed users" in replier.sent[-1].text
            await core.handle(said(ALICE, CLOSE_HALF), replier)
            assert not any(o.buttons for o in replier.sent) and await sol_size(services, alice) == 10.0
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for how in ("nobody", "BASTION_ALLOWED_USERS", "/grant", "BASTION_ADMIN_USERS", "BASTION_TRADING_OPEN=true"):
        assert how in warning


async def test_trading_open_setting_lets_every_user_trade(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bastion.serve"):
        async with core_with(sqlite_url, tmp_path, trading_open=True) as (services, core):
            await trader_with_sol_long(services, BOB)
            replier = RecordingReplier()
            await core.handle(said(BOB, "/close sol half"), replier)
            assert replier.sent[-1].buttons
    assert not [r for r in caplog.records if "Trading is closed" in r.getMessage()]


async def test_user_cache_is_bounded(alice_only: tuple[Services, BotCore]) -> None:
    services, core = alice_only
    small = BotCore(
        registry=core.registry,
        chat=core.chat,
        approvals=core.approvals,
        sessions=services.sessions,
        policy=core.policy,
        limiter=core.limiter,
        user_cache_size=3,
    )
    ids = [(await small.user("telegram", str(5000 + i))).user_id for i in range(8)]
    assert small.cached_users == 3 and len(set(ids)) == 8
    assert (await small.user("telegram", "5000")).user_id == ids[0]  # evicted, read back from the database
