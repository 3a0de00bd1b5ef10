"""A Discord channel over real services, driven by SimCord (discord.py's real machinery, an in-memory Discord)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import simcord

from bastion.app import Services
from bastion.serve import build_core
from bastion.settings import Settings
from bot.core.dispatcher import BotCore
from bot.discord.app import DiscordChannel
from storage.models import User
from storage.repositories import users as users_repo
from tests.bot.telegram_harness import SECRET_KEY, telegram_services


def discord_settings(db_url: str, tmp_path: Path, **extra: Any) -> Settings:
    """Defaults (simulated market, paper exchange, offline model), trading closed until a role is granted."""
    return Settings(
        secret_keys=SECRET_KEY,
        database={"url": db_url, "checkpoint_path": tmp_path / "checkpoints.db"},
        scheduler={"enabled": False},
        **extra,
    )


async def grant(services: Services, discord_user: int, *roles: str) -> int:
    """Give a Discord user roles in the database (as /grant does); returns the user id."""
    async with services.sessions.begin() as session:
        user = await users_repo.get_or_create_user(session, "discord", str(discord_user))
        row = await session.get(User, user.id)
        assert row is not None and row.id is not None
        row.roles = list(roles)
        return row.id


@dataclass
class World:
    """What a test drives and inspects."""

    env: simcord.Env
    services: Services
    core: BotCore
    channel: DiscordChannel
    guild: simcord.GuildHandle
    text: simcord.ChannelHandle
    alice: simcord.MemberActor
    bob: simcord.MemberActor
    alice_id: int  # Alice's user id in the database (she has the trader role; Bob has none)


@asynccontextmanager
async def discord_world(db_url: str, tmp_path: Path, **extra: Any) -> AsyncIterator[World]:
    """A guild with #general, Alice (trader) and Bob (no role), the bot answering through the real core."""
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    settings = discord_settings(db_url, tmp_path, **extra)
    async with telegram_services(settings) as services, sqlite_persistence(tmp_path / "cp.db") as persistence:
        core = build_core(services, build_chat(services, persistence), persistence.store)
        channel = DiscordChannel(core, "unused-token")
        # Not `simcord.run`: an async fixture's setup and teardown run in different contexts, and `run` keeps a
        # context variable across them. Errors the bot swallowed are still raised at the end.
        env = simcord.Env(channel.client, settle_timeout=30.0)
        await env.start()
        try:
            guild = env.create_guild(name="traders")
            text = guild.create_text_channel("general")
            alice = guild.add_member(env.create_user("alice"))
            bob = guild.add_member(env.create_user("bob"))
            alice_id = await grant(services, alice.id, "trader")
            yield World(env, services, core, channel, guild, text, alice, bob, alice_id)
        finally:
            await env.shutdown()
        env.raise_errors()
