"""The second channel: /alert on Discord (discord.py's real tree driven by SimCord), [Confirm] pressed in the DM it was
sent to, once, and /alerts in the server listing the server's opt-ins, never a member's rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
from sqlalchemy import select

from storage.alerts import AlertRule
from tests.bot.discord.harness import World, discord_world


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A guild with Alice (trader) and Bob."""
    async with discord_world(sqlite_url, tmp_path, bot={"burst": 50, "rate_per_minute": 600}) as w:
        yield w


def _content(result: object) -> str:
    response = getattr(result, "response", None)
    return response.content if response is not None else ""


async def _status(world: World) -> list[str]:
    async with world.services.sessions() as s:
        return [r.status for r in (await s.scalars(select(AlertRule))).all()]


async def test_alert_from_a_discord_slash_command_confirmed_by_its_owner(world: World) -> None:
    await world.bob.slash(world.text, "alert", text="tell me when ETH drops below 3000")
    # Buttons are personal: the channel is told, the confirmation itself arrives in Bob's DM.
    assert all(not m.components for m in world.text.history())
    dm = world.bob.user.dm_channel
    assert dm is not None
    found = [m for m in dm.history() if m.components]
    assert found, [m.content for m in world.text.history()]
    message: discord.Message = found[-1]
    assert "ETH: price below 3,000; at most once every hour" in message.content
    assert await _status(world) == ["pending"]
    pressed = await world.bob.user.click(message, label="Confirm")
    assert pressed.ephemeral and _content(pressed) == "Confirmed."
    assert await _status(world) == ["active"]
    edited = next(m for m in dm.history() if m.id == message.id)
    assert "is on" in edited.content and not edited.components  # spent: nothing left to press
    listing = _content(await world.bob.slash(world.text, "alerts"))
    # In a server only the server's own opt-ins are listed; Bob's rule is personal.
    assert "Alerts this group receives" in listing and "ETH: price below 3,000" not in listing
    assert not any("ETH: price below" in m.content for m in world.text.history())
