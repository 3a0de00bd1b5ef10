"""Discord outbox delivery and channel subscriptions: the shared worker through the Discord sender, 429s waited
out, reports as embeds with their PNG attached; only members with Manage Server subscribe a channel."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
from sqlalchemy import func, select

from bot.core.delivery import DeliveryWorker
from bot.core.messages import Outbound, approval_buttons
from bot.core.middleware import GROUP_ADMINS_ONLY
from bot.core.notify import APPROVAL_TOKEN, payload_of
from bot.discord.out import CHART_NAME
from bot.discord.sender import DiscordSender
from engine.reports.service import PHOTO_KEY
from storage.models import Outbox, ReportSubscription
from storage.repositories import outbox as outbox_repo
from tests.bot.discord.harness import World, discord_world
from tests.bot.discord.test_discord_commands import said
from tests.bot.fakes import VirtualClock

# A 1x1 PNG: the picture travels as bytes; what it shows does not matter to delivery.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A guild with Alice (trader) and Bob."""
    async with discord_world(sqlite_url, tmp_path, bot={"burst": 50, "rate_per_minute": 600}) as w:
        yield w


async def queue(world: World, clock: VirtualClock, recipient: int, payload: dict[str, object], key: str) -> None:
    """One outbox row for Discord."""
    async with world.services.sessions.begin() as session:
        await outbox_repo.enqueue(
            session, platform="discord", recipient=str(recipient), payload=payload, dedup_key=key, now=clock.wall()
        )


async def pending(world: World) -> int:
    """Outbox rows not sent yet."""
    async with world.services.sessions() as session:
        query = select(func.count()).select_from(Outbox).where(Outbox.sent_at.is_(None))  # type: ignore[union-attr]
        return int((await session.execute(query)).scalar_one())


async def test_a_report_reaches_a_channel_as_an_embed_and_a_429_is_waited_out(world: World) -> None:
    clock = VirtualClock()
    refs: list[str] = []

    async def on_sent(payload: dict[str, object], ref: str) -> None:
        refs.append(ref)

    sender = DiscordSender(world.channel.client, on_sent=on_sent)
    worker = DeliveryWorker(
        world.services.sessions, {"discord": sender}, clock=clock, sleep=clock.sleep, wall=clock.wall
    )
    report = {
        "text": "**BTC 4h report**\nBias bullish, confidence 70%.",
        "buttons": [],
        PHOTO_KEY: base64.b64encode(PNG).decode(),
    }
    await queue(world, clock, world.text.id, report, "report:1")
    approval = payload_of(Outbound("Close 5 of 10 SOL?", approval_buttons("tok123")), **{APPROVAL_TOKEN: "tok123"})
    await queue(world, clock, world.alice.id, approval, "approval:tok123")  # a user id: delivered to the DM
    world.env.inject_error(
        "POST", f"/channels/{world.text.id}/messages", status=429, message="You are being rate limited."
    )
    stats = await worker.drain(wait_for_retries=True)
    assert stats.sent == 2 and stats.retried == 1 and stats.failed == 0
    assert clock.now >= 1.0  # the 429 paused delivery for its retry_after before the same message went again
    assert await pending(world) == 0
    posted = [m for m in world.text.history() if m.author.bot]
    assert len(posted) == 1  # refused once, sent once: never twice
    embed = posted[0].embeds[0]
    assert "BTC 4h report" in (embed.description or "") and embed.image.url == f"attachment://{CHART_NAME}"
    assert [a.filename for a in posted[0].attachments] == [CHART_NAME]
    dm = [m for m in world.alice.user.dm_channel.history() if m.author.bot]
    assert len(dm) == 1 and dm[0].components and "Close 5 of 10 SOL?" in dm[0].content
    assert f"{dm[0].channel.id}:{dm[0].id}" in refs  # the DM's ref goes to the approval for its expiry edit


async def test_an_unreachable_recipient_is_gone_not_retried(world: World) -> None:
    clock = VirtualClock()
    worker = DeliveryWorker(
        world.services.sessions,
        {"discord": DiscordSender(world.channel.client)},
        clock=clock,
        sleep=clock.sleep,
        wall=clock.wall,
    )
    await queue(world, clock, world.text.id, {"text": "hello", "buttons": []}, "x")
    world.env.inject_error(
        "POST", f"/channels/{world.text.id}/messages", status=403, code=50013, message="Missing Permissions"
    )
    stats = await worker.drain(wait_for_retries=True)
    assert stats.failed == 1 and stats.sent == 0 and stats.retried == 0


async def test_an_admin_subscribes_the_channel_and_a_member_is_refused(world: World) -> None:
    mods = world.guild.create_role("Mods", permissions=discord.Permissions(manage_guild=True))
    carol = world.guild.add_member(world.env.create_user("carol"), roles=[mods])
    refused = await world.bob.slash(world.text, "subscribe", details="btc every 4h")
    assert said(refused) == GROUP_ADMINS_ONLY.format(name="subscribe")
    typed = await world.bob.send(world.text, "/unsubscribe")
    assert typed is not None and world.text.last_message is not None
    assert world.text.last_message.content == GROUP_ADMINS_ONLY.format(name="unsubscribe")
    async with world.services.sessions() as session:
        assert (await session.scalars(select(ReportSubscription))).first() is None  # nothing changed
    subscribed = await carol.slash(world.text, "subscribe", details="btc eth every 4h")
    assert "BTC" in said(subscribed) and "Usage" not in said(subscribed)
    async with world.services.sessions() as session:
        row = (await session.scalars(select(ReportSubscription))).one()
    assert (row.platform, row.chat_ref, row.symbols) == ("discord", str(world.text.id), ["BTC", "ETH"])
    assert "BTC" in said(await world.bob.slash(world.text, "subscriptions"))  # reading them is for everyone
