"""`bastion serve` with BASTION_DISCORD__ENABLED=true, end to end: the server's own Discord channel, attached to
SimCord instead of the gateway, answers slash commands, free text and a button press, and delivers the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bastion.app import Services
from bastion.serve import Server, open_server
from bastion.settings import Settings
from storage.repositories import outbox as outbox_repo
from tests.agents.test_entries import PINNED
from tests.bot.discord.harness import grant
from tests.bot.discord.test_discord_approvals import with_buttons
from tests.bot.discord.test_discord_commands import said
from tests.bot.telegram_harness import ALICE, SECRET_KEY, executions, sol_size, telegram_services
from tests.bot.test_telegram_e2e import reply_to
from tests.fakes.telegram_api import FakeTelegram


async def _eventually(check: Callable[[], bool], within_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serving(services: Services) -> AsyncIterator[tuple[Server, simcord.Env]]:
    """`bastion serve` on these services, its Discord client attached to SimCord instead of the gateway."""
    envs: list[simcord.Env] = []
    async with open_server(services) as server:
        assert server.discord is not None

        async def attach(client: discord.Client) -> None:  # in place of the gateway login
            env = simcord.Env(client, settle_timeout=30.0)
            await env.start()
            envs.append(env)

        server.discord.connect = attach
        task = asyncio.create_task(server.run())
        await _eventually(lambda: server.started.is_set() or task.done())
        if task.done():
            await task
        try:
            yield server, envs[0]
        finally:
            server.stop.set()
            await asyncio.wait_for(task, timeout=20)
            await envs[0].shutdown()
    envs[0].raise_errors()


def _settings(sqlite_url: str, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        secret_keys=SECRET_KEY,
        database={"url": sqlite_url, "checkpoint_path": tmp_path / "checkpoints.db"},
        api={"enabled": False},
        scheduler={"enabled": False},
        bot={"burst": 20},
        **extra,
    )


async def test_bastion_serve_answers_on_discord(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_DISCORD__ENABLED", "true")
    monkeypatch.setenv("BASTION_DISCORD__TOKEN", "test-token")
    settings = _settings(sqlite_url, tmp_path)
    assert settings.discord.enabled and not settings.telegram.enabled
    async with telegram_services(settings) as services:
        services.market.set_now(PINNED)  # type: ignore[attr-defined]  # an accepted 1h plan for a SOL long
        async with serving(services) as (server, env):
            assert server.telegram is None
            guild = env.create_guild(name="traders")
            general = guild.create_text_channel("general")
            alice = guild.add_member(env.create_user("alice"))
            alice_id = await grant(services, alice.id, "trader")
            price = await alice.slash(general, "price", symbol="sol")
            assert "SOL/USDT:USDT" in said(price) and not price.ephemeral
            bot = env.bot.user
            assert bot is not None
            await alice.send(general, f"{bot.mention} what is the price of btc?")
            assert "BTC/USDT:USDT" in (general.last_message.content if general.last_message else "")
            assert "Connected a paper account" in said(await alice.user.slash("connect", exchange="paper"))
            assert "armed" in said(await alice.user.slash("arm"))
            proposal = await alice.slash(general, "long", symbol="sol", details="0.1 stop auto")
            assert proposal.ephemeral and "direct message" in said(proposal)
            message = with_buttons(alice.user.dm_channel.history())
            await alice.user.click(message, label="Approve")
            assert await executions(services) == 1
            assert await sol_size(services, alice_id) == pytest.approx(0.1)
            # The leader's delivery worker sends what the outbox holds for Discord.
            async with services.sessions.begin() as session:
                await outbox_repo.enqueue(
                    session,
                    platform="discord",
                    recipient=str(general.id),
                    payload={"text": "BTC report", "buttons": []},
                )
            await _eventually(lambda: any(m.content == "BTC report" for m in general.history()))
            assert server.editors().keys() == {"discord"}


async def test_telegram_and_discord_on_one_loop(sqlite_url: str, tmp_path: Path) -> None:
    async with FakeTelegram() as fake:
        settings = _settings(
            sqlite_url,
            tmp_path,
            telegram={"enabled": True, "token": fake.token, "base_url": fake.base_url},
            discord={"enabled": True, "token": "test-token"},
        )
        async with telegram_services(settings) as services, serving(services) as (server, env):
            assert server.telegram is not None and set(server.senders()) == {"telegram", "discord"}
            assert "BTC/USDT:USDT" in await reply_to(fake, ALICE, ALICE, "/price btc")
            general = env.create_guild(name="traders").create_text_channel("general")
            bob = general.guild.add_member(env.create_user("bob"))  # type: ignore[union-attr]
            assert "ETH/USDT:USDT" in said(await bob.slash(general, "price", symbol="eth"))
            assert "SOL/USDT:USDT" in await reply_to(fake, ALICE, ALICE, "/price sol")  # Telegram still answers
