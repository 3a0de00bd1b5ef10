"""/size and /montecarlo on Discord (the second channel): typed options reach the calculator as typed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.discord.harness import World, discord_world
from tests.bot.discord.test_discord_commands import said


@pytest.fixture
async def world(sqlite_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with discord_world(sqlite_url, tmp_path, bot={"burst": 100, "rate_per_minute": 600}) as w:
        yield w


async def test_size_with_capital_and_kelly_options_and_montecarlo(world: World) -> None:
    out = said(
        await world.alice.slash(
            world.text, "size", symbol="btc", entry=95000.0, stop=93000.0, risk=1.0, capital=20000.0,
            win_rate=55.0, payoff=2.0,
        )
    )  # fmt: skip
    assert "Capital 20,000.00 (typed), risk 1% (typed)" in out and "full Kelly risks 32.5%" in out, out
    refused = said(await world.alice.slash(world.text, "size", symbol="btc", entry=95000.0, stop=-5.0))
    assert "Usage: `/size" in refused and "Position size" not in refused
    out = said(await world.alice.slash(world.text, "montecarlo", win_rate=45.0, payoff=2.0, risk=1.0, trades=50))
    assert "Monte Carlo of 50 trades x 50,000 paths at 1% risk per trade (typed), win rate 45%" in out, out
