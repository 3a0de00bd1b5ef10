"""Free text on Discord: DMs, mentions and replies in a server, streamed by throttled edits, split at 2,000."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agents.runner import Reply
from bot.core.render import DISCORD_LIMIT, render_for
from bot.core.streaming import CURSOR
from storage.models import Approval
from tests.agents.test_entries import PINNED
from tests.bot.discord.harness import World, discord_world
from tests.bot.discord.test_discord_approvals import with_buttons
from tests.bot.telegram_harness import executions

INTERVAL_S = 0.3


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A guild with Alice (trader) and Bob; streamed edits every 0.3 s (the setting's floor is for real chats)."""
    async with discord_world(sqlite_url, tmp_path, bot={"burst": 50, "rate_per_minute": 600}) as w:
        w.core.stream_interval_s = INTERVAL_S
        yield w


def scripted(world: World, tokens: list[str], pause_s: float) -> list[str]:
    """The analyst answers every turn with `tokens`, streamed `pause_s` apart; returns the questions it got."""
    asked: list[str] = []

    async def ask(ctx: Any, thread_id: str, text: str, on_token: Any = None) -> Reply:
        asked.append(text)
        for token in tokens:
            if on_token is not None:
                on_token(token)
            await asyncio.sleep(pause_s)
        return Reply("".join(tokens))

    world.core.chat.ask = ask  # type: ignore[method-assign]
    return asked


def edits_of(world: World, channel_id: int) -> int:
    """PATCHes of the bot's messages in a channel (the streamed edits)."""
    return sum(
        1 for r in world.env.http_requests if r.method == "PATCH" and r.path.startswith(f"/channels/{channel_id}/")
    )


async def test_a_dm_is_streamed_by_edits_at_most_once_per_interval(world: World) -> None:
    tokens = [f"word{i} " for i in range(30)]
    asked = scripted(world, tokens, pause_s=0.05)
    started = time.monotonic()
    await world.alice.send_dm("how does the market feel today?")
    took = time.monotonic() - started
    dm = world.alice.user.dm_channel
    answers = [m for m in dm.history() if m.author.bot]
    assert asked == ["how does the market feel today?"]
    assert len(answers) == 1 and answers[0].content.strip() == "".join(tokens).strip()  # whole, the cursor gone
    assert CURSOR.strip() not in answers[0].content
    edits = edits_of(world, dm.id)
    assert edits >= 2  # it was streamed, not sent at the end
    assert edits <= took / INTERVAL_S + 1  # never more often than the interval


async def test_a_long_answer_is_split_at_2000_characters(world: World) -> None:
    paragraph = "The level held three times on rising volume and the trend is intact. " * 10
    tokens = [paragraph + "\n\n" for _ in range(7)]  # about 4,900 characters
    scripted(world, tokens, pause_s=0.0)
    await world.alice.send_dm("explain everything")
    answers = [m.content for m in world.alice.user.dm_channel.history() if m.author.bot]
    assert len(answers) >= 3 and all(len(a) <= DISCORD_LIMIT for a in answers)
    assert answers == render_for("discord", "".join(tokens))


async def test_in_a_server_only_mentions_and_replies_reach_the_analyst(world: World) -> None:
    asked = scripted(world, ["Quiet market."], pause_s=0.0)
    await world.bob.send(world.text, "anyone trading today?")
    assert asked == [] and world.text.last_message is not None and not world.text.last_message.author.bot
    bot = world.env.bot.user
    assert bot is not None
    await world.bob.send(world.text, f"{bot.mention} how is btc?")
    assert asked == ["how is btc?"]  # the mention itself is not part of the question
    answer = world.text.last_message
    assert answer is not None and answer.author.bot and answer.content == "Quiet market."
    await world.bob.send(world.text, "and eth?", reply_to=answer)
    assert asked[-1] == "and eth?"


async def test_free_text_approval_in_a_server_goes_to_the_dm(world: World) -> None:
    # The simulated market at a moment with an accepted 1h plan for a SOL long: at the wall clock's moment the
    # structural stop may be rejected (no holding level below), which is not what this test is about.
    world.services.market.set_now(PINNED)  # type: ignore[attr-defined]
    await world.alice.user.slash("connect", exchange="paper")
    await world.alice.user.slash("arm")
    bot = world.env.bot.user
    assert bot is not None
    await world.alice.send(world.text, f"{bot.mention} long sol 0.1 stop auto")
    assert all(not m.components for m in world.text.history())
    assert "direct message" in (world.text.last_message.content if world.text.last_message else "")
    message = with_buttons(world.alice.user.dm_channel.history())
    async with world.services.sessions() as session:
        row = (await session.scalars(select(Approval))).one()
    assert row.message_ref == f"{message.channel.id}:{message.id}"  # recorded after the core's own record
    await world.alice.user.click(message, label="Approve")
    assert await executions(world.services) == 1
