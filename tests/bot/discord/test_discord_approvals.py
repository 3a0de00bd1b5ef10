"""Approval buttons on Discord: persistent DynamicItems through the core's access chain and approvals service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import discord
import pytest
from sqlalchemy import select, update

from bastion.serve import build_core
from bot.core.approvals import EXPIRED_TEXT, NOT_YOURS
from bot.core.messages import Outbound, approval_buttons
from bot.discord.app import DiscordChannel
from storage.models import AccountMode, Approval
from storage.repositories import accounts as accounts_repo
from storage.repositories import engine as engine_repo
from storage.types import utcnow
from tests.bot.discord.harness import World, discord_world
from tests.bot.telegram_harness import executions, sol_size
from tools.exchange.models import IntentKind, OrderIntent, Side


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A guild with Alice (trader, an armed paper account holding 10 SOL long) and Bob."""
    async with discord_world(sqlite_url, tmp_path, bot={"burst": 50, "rate_per_minute": 600}) as w:
        async with w.services.sessions.begin() as session:
            row = await accounts_repo.add_account(
                session, None, user_id=w.alice_id, exchange_id="paper", label="paper", credentials={}
            )
            assert row.id is not None
            await engine_repo.set_account_mode(session, row.id, mode=AccountMode.ADVISE, armed=True)
        account = await w.services.open_account(row)
        await account.place(
            OrderIntent(
                intent_id="seed-discord",
                account_ref=f"account:{row.id}",
                symbol="SOL/USDT:USDT",
                kind=IntentKind.OPEN,
                side=Side.BUY,
                amount=Decimal("10"),
            )
        )
        yield w


def with_buttons(messages: list[discord.Message]) -> discord.Message:
    """The latest message that carries buttons."""
    found = [m for m in messages if m.components]
    assert found, [m.content for m in messages]
    return found[-1]


async def approval_row(world: World) -> Approval:
    """The one approval in the database."""
    async with world.services.sessions() as session:
        rows = list((await session.scalars(select(Approval))).all())
    assert len(rows) == 1
    return rows[0]


async def propose_close(world: World) -> discord.Message:
    """Alice asks to close half her SOL in #general; the confirmation arrives in her DM."""
    result = await world.alice.slash(world.text, "close", symbol="sol", pct=50.0)
    assert result.ephemeral and "direct message" in (result.response.content if result.response else "")
    assert all(not m.components for m in world.text.history())  # nothing to press in the public channel
    message = with_buttons(world.alice.user.dm_channel.history())
    assert "Close 50% of the SOL/USDT:USDT long (5 of 10 SOL)" in message.content
    row = await approval_row(world)
    assert row.message_ref == f"{message.channel.id}:{message.id}"  # the DM, so expiry edits the buttons' message
    return message


async def test_owner_approves_exactly_one_order(world: World) -> None:
    message = await propose_close(world)
    pressed = await world.alice.user.click(message, label="Approve")
    assert pressed.ephemeral and "placing the order" in (pressed.response.content if pressed.response else "")
    edited = _fresh(world, message)
    assert "Executed" in edited.content and not edited.components
    assert await executions(world.services) == 1
    assert await sol_size(world.services, world.alice_id) == pytest.approx(5.0)


def _fresh(world: World, message: discord.Message) -> discord.Message:
    return next(m for m in world.alice.user.dm_channel.history() if m.id == message.id)


async def test_a_second_press_places_no_second_order(world: World) -> None:
    message = await propose_close(world)
    # The outcome edit fails once, so the buttons stay and Alice presses again.
    world.env.inject_error("PATCH", f"/channels/{message.channel.id}/messages/{message.id}", status=500)
    await world.alice.user.click(message, label="Approve")
    assert _fresh(world, message).components
    again = await world.alice.user.click(message, label="Approve")
    assert again.ephemeral and "already" in (again.response.content if again.response else "").lower()
    assert await executions(world.services) == 1
    assert await sol_size(world.services, world.alice_id) == pytest.approx(5.0)


async def test_another_member_is_refused_ephemerally(world: World) -> None:
    await propose_close(world)
    row = await approval_row(world)
    # The bot never shows an approval in public; a copy of its buttons in #general must still be Alice's alone.
    channel = world.channel.client.get_channel(world.text.id)
    await world.channel.out.send(channel, Outbound(row.summary, approval_buttons(row.token)))
    public = with_buttons(world.text.history())
    refused = await world.bob.click(public, label="Approve")
    assert refused.ephemeral and refused.response is not None and refused.response.content == NOT_YOURS
    rejected = await world.bob.click(public, label="Reject")
    assert rejected.ephemeral and rejected.response is not None and rejected.response.content == NOT_YOURS
    assert await executions(world.services) == 0 and (await approval_row(world)).status == "pending"
    assert next(m for m in world.text.history() if m.id == public.id).components  # untouched


async def test_expired_press_is_refused_and_the_sweep_edits_the_message(world: World) -> None:
    message = await propose_close(world)
    async with world.services.sessions.begin() as session:
        await session.execute(update(Approval).values(expires_at=utcnow() - timedelta(seconds=1)))
    refused = await world.alice.user.click(message, label="Approve")
    assert refused.ephemeral and "expired" in (refused.response.content if refused.response else "").lower()
    assert await executions(world.services) == 0
    # The job body of the expiry sweep, with the editors `bastion serve` registers.
    assert await world.core.expire_approvals({"discord": world.channel.editor}) == 1
    edited = _fresh(world, message)
    assert EXPIRED_TEXT in edited.content and not edited.components
    assert await world.core.expire_approvals({"discord": world.channel.editor}) == 0  # once


async def test_a_press_after_a_restart_works_once(world: World, tmp_path: Path) -> None:
    message = await propose_close(world)
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    # A new process: a new core and client over the same database; no view of the old one survives.
    async with sqlite_persistence(tmp_path / "cp.db") as persistence:
        core = build_core(world.services, build_chat(world.services, persistence), persistence.store)
        fresh = DiscordChannel(core, "unused-token")
        await world.env.restart_bot(fresh.client)
        pressed = await world.alice.user.click(message, label="Approve")
        assert pressed.ephemeral
        assert "Executed" in _fresh(world, message).content
        assert await executions(world.services) == 1
        assert await sol_size(world.services, world.alice_id) == pytest.approx(5.0)
