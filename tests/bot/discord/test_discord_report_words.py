"""Subscriptions in plain words on Discord: a member mentioning the bot is refused exactly as /subscribe refuses
them, a Manage Server member subscribes the channel in words, and a DM asks what it is subscribed to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
from sqlalchemy import select

from bot.core.middleware import GROUP_ADMINS_ONLY
from storage.models import ReportSubscription
from tests.bot.discord.harness import World, discord_world


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A guild with Alice (trader) and Bob."""
    async with discord_world(sqlite_url, tmp_path, bot={"burst": 50, "rate_per_minute": 600}) as w:
        yield w


async def rows(world: World) -> list[ReportSubscription]:
    async with world.services.sessions() as session:
        return list((await session.scalars(select(ReportSubscription))).all())


def last_bot_message(channel: discord.abc.Messageable | object) -> str:
    history = [m for m in channel.history() if m.author.bot]  # type: ignore[attr-defined]
    return history[-1].content


async def test_subscribing_a_channel_in_words_follows_the_manage_server_rule(world: World) -> None:
    bot = world.env.bot.user
    assert bot is not None
    await world.bob.send(world.text, f"{bot.mention} subscribe this channel to BTC and ETH reports every 4 hours")
    assert last_bot_message(world.text) == GROUP_ADMINS_ONLY.format(name="subscribe")
    assert await rows(world) == []
    mods = world.guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[mods])
    await carol.send(world.text, f"{bot.mention} subscribe this channel to BTC and ETH reports every 4 hours")
    assert last_bot_message(world.text).startswith("Subscribed this chat:\n• reports BTC, ETH on 4h, every 4h")
    (row,) = await rows(world)
    assert (row.platform, row.chat_ref, row.symbols, row.every_hours) == ("discord", str(world.text.id),
                                                                         ["BTC", "ETH"], 4)  # fmt: skip
    await world.bob.send(world.text, f"{bot.mention} unsubscribe from reports")
    assert last_bot_message(world.text) == GROUP_ADMINS_ONLY.format(name="unsubscribe")
    assert len(await rows(world)) == 1
    # In a DM nobody else is affected: the member subscribes their own chat, and asks what it receives.
    await world.bob.send_dm("send me the daily scan")
    await world.bob.send_dm("what am I subscribed to?")
    dm = world.bob.user.dm_channel
    assert "daily elite scan" in last_bot_message(dm)
