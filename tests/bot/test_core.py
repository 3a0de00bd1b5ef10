"""The channel-agnostic core without any platform: permissions, rate limit, streaming, monitor approvals."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.app import Services
from bastion.serve import build_core
from bastion.settings import Settings
from bot.core.dispatcher import BotCore
from bot.core.messages import ButtonPress, ChatKind, Inbound, Outbound, approval_buttons
from bot.core.notify import OutboxNotifier
from bot.core.streaming import CURSOR, StreamedAnswer
from engine.risk.decision import Decision
from storage.models import Outbox, User
from storage.repositories import approvals as approvals_repo
from storage.repositories import users as users_repo
from tests.bot.telegram_harness import ALICE, BOB, executions, sol_size, telegram_services, trader_with_sol_long


@dataclass
class RecordingReplier:
    """Collects what the core sends, edits and deletes."""

    sent: list[Outbound] = field(default_factory=list)
    edits: list[tuple[str, Outbound, float]] = field(default_factory=list)
    private: list[Outbound] = field(default_factory=list)
    deleted: int = 0
    answers: list[str] = field(default_factory=list)

    async def send(self, out: Outbound) -> str | None:
        self.sent.append(out)
        return f"chat:{len(self.sent)}"

    async def edit(self, ref: str | Outbound, out: Outbound | None = None) -> None:
        if isinstance(ref, Outbound):  # the ButtonReplier form
            ref, out = "pressed", ref
        assert out is not None
        self.edits.append((ref, out, asyncio.get_running_loop().time()))

    async def send_private(self, out: Outbound) -> str | None:
        self.private.append(out)
        return "private:1"

    async def delete_user_message(self) -> bool:
        self.deleted += 1
        return True

    async def answer(self, text: str) -> None:
        self.answers.append(text)


def settings(sqlite_url: str, tmp_path: Path, **extra: object) -> Settings:
    """Defaults on a test database."""
    return Settings(database={"url": sqlite_url, "checkpoint_path": tmp_path / "cp.db"}, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def core_on(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, BotCore]]:
    """A core over migrated services, trading allowed for ALICE only, 3 messages of burst."""
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    s = settings(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"], bot={"burst": 3, "rate_per_minute": 6})
    async with telegram_services(s) as services, sqlite_persistence(tmp_path / "cp.db") as persistence:
        chat = build_chat(services, persistence)
        yield services, build_core(services, chat, persistence.store)


async def grant_role(services: Services, telegram_user: int, *roles: str) -> int:
    """Set the roles of a Telegram user in the database (as /grant and /revoke do); returns the user id."""
    async with services.sessions.begin() as session:
        user = await users_repo.get_or_create_user(session, "telegram", str(telegram_user))
        row = await session.get(User, user.id)
        assert row is not None and row.id is not None
        row.roles = list(roles)
        return row.id


def said(user: int, text: str, kind: ChatKind = ChatKind.PRIVATE) -> Inbound:
    """A Telegram-like message from a user."""
    chat = str(user) if kind is ChatKind.PRIVATE else "-100"
    return Inbound("telegram", str(user), chat, text, kind, "T", addressed=True, message_ref=f"{chat}:1")


async def test_rate_limit_answers_politely_once(core_on: tuple[Services, BotCore]) -> None:
    _, core = core_on
    replier = RecordingReplier()
    for _ in range(6):
        await core.handle(said(ALICE, "/help"), replier)
    helps = [o for o in replier.sent if "**Commands**" in o.text]
    notices = [o for o in replier.sent if "please wait" in o.text.lower()]
    assert len(helps) == 3 and len(notices) == 1


async def test_trading_commands_need_permission(core_on: tuple[Services, BotCore]) -> None:
    _, core = core_on
    replier = RecordingReplier()
    await core.handle(said(BOB, "/close sol"), replier)
    assert "limited to allowed users" in replier.sent[-1].text
    await core.handle(said(BOB, "/grant 1002 trader"), replier)
    assert "Only an admin" in replier.sent[-1].text
    await core.handle(said(BOB, "/help"), replier)
    assert "/close" not in replier.sent[-1].text and "/price" in replier.sent[-1].text


async def test_a_crashing_handler_becomes_a_polite_message(core_on: tuple[Services, BotCore]) -> None:
    _, core = core_on
    replier = RecordingReplier()

    async def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("secret internals")

    core.chat.ask = boom  # type: ignore[method-assign]
    core.chat.toolkit.run = boom  # slash commands call their tools directly
    for text in ("/price btc", "price btc"):
        await core.handle(said(ALICE, text), replier)
        assert replier.sent[-1].text.startswith("Something went wrong")
        assert "secret internals" not in replier.sent[-1].text


async def test_streaming_edits_at_most_once_per_interval() -> None:
    replier = RecordingReplier()
    stream = StreamedAnswer(replier, interval_s=0.2)  # type: ignore[arg-type]
    started = asyncio.get_running_loop().time()
    for i in range(30):
        stream.on_token(f"word{i} ")
        await asyncio.sleep(0.02)
    await stream.finish(Outbound("final answer"))
    took = asyncio.get_running_loop().time() - started
    times = [t for _, _, t in replier.edits]
    assert replier.sent[0].text.endswith(CURSOR)  # the first part went out while tokens were still coming
    assert replier.edits[-1][1].text == "final answer"
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(times))
    # At most one per interval of the time it really took (not a fixed 5: a stalled machine stretches the stream).
    assert 1 <= len(replier.edits) <= took / 0.2 + 1


async def test_monitor_proposal_is_delivered_and_executed_once(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    user_id = await trader_with_sol_long(services, ALICE)
    decision = Decision(action="TP_PARTIAL", confidence=0.8, reasoning="T1 reached", close_pct=50, rule="targets")
    async with services.sessions.begin() as session:
        approval = await approvals_repo.create_approval(
            session,
            owner_user_id=user_id,
            intent={
                "symbol": "SOL/USDT:USDT",
                "side": "long",
                "action": "TP_PARTIAL",
                "close_pct": 50,
                "new_stop": None,
                "account_id": 1,
            },
            summary="TAKE PROFIT 50% of SOL/USDT:USDT long (10): T1 reached",
            ttl=timedelta(minutes=5),
            account_id=1,
        )
    notifier = OutboxNotifier(services.sessions, frozenset({"telegram"}))
    await notifier.request_approval(user_id, approval, decision)
    await notifier.request_approval(user_id, approval, decision)  # a repeat is deduplicated
    async with services.sessions() as session:
        from sqlalchemy import select

        rows = (await session.scalars(select(Outbox))).all()
    assert len(rows) == 1 and rows[0].recipient == str(ALICE)
    assert [b["data"] for b in rows[0].payload["buttons"]] == [b.data for b in approval_buttons(approval.token)]

    press = ButtonPress("telegram", str(ALICE), str(ALICE), f"{ALICE}:7", f"v1:{approval.token}:y")
    first, second, stranger = RecordingReplier(), RecordingReplier(), RecordingReplier()
    await asyncio.gather(core.press(press, first), core.press(press, second))  # type: ignore[arg-type]
    await core.press(ButtonPress("telegram", str(BOB), "-100", "-100:7", press.data, ChatKind.GROUP), stranger)  # type: ignore[arg-type]
    assert await executions(services) == 1
    assert await sol_size(services, user_id) == pytest.approx(5.0)
    texts = first.answers + second.answers
    assert any("placing the order" in t for t in texts) and any("Already executed" in t for t in texts)
    assert "Executed" in (first.edits + second.edits)[0][1].text
    assert "someone else" in stranger.answers[0]
