"""The first five minutes on Telegram with no seeding, end to end over real HTTP (real PTB against the fake Bot API):
`/connect paper`, `/arm`, `/long`, press, `/close`, press, `/positions`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.repositories import users as users_repo
from tests.agents.test_entries import PINNED
from tests.bot.telegram_harness import ALICE, Running, bot_settings, executions, running, sol_size, telegram_services
from tests.bot.test_telegram_e2e import buttons_of, reply_to
from tests.fakes.telegram_api import FakeTelegram


@pytest.fixture
async def bot(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """`bastion serve` with Telegram in polling mode and nothing seeded."""
    async with FakeTelegram() as fake:
        settings = bot_settings(fake, sqlite_url, tmp_path)
        # Seven events in a few seconds: a person types slower than the default burst of 5 refills (20/min).
        settings.bot.burst = 10
        async with telegram_services(settings) as services, running(services, fake) as run:
            services.market.set_now(PINNED)  # type: ignore[attr-defined]  # an accepted 1h plan for a SOL long
            yield run


async def _press_and_wait(fake: FakeTelegram, word: str) -> str:
    message_id, data = buttons_of(fake, ALICE)
    fake.press_button(ALICE, ALICE, message_id, data[0])
    await fake.wait_for(lambda: word in (fake.message(ALICE, message_id).text or ""), timeout=20)
    return fake.message(ALICE, message_id).text or ""


async def test_open_close_and_see_the_rest_from_telegram(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    assert "Connected a paper account" in await reply_to(fake, ALICE, ALICE, "/connect paper")
    assert "armed" in await reply_to(fake, ALICE, ALICE, "/arm")
    proposal = await reply_to(fake, ALICE, ALICE, "/long sol 0.1 stop auto")
    assert "Open a SOL/USDT:USDT long of 0.1 SOL at market" in proposal and "structural" in proposal
    assert "Risk " in proposal and "T1 " in proposal
    opened = await _press_and_wait(fake, "Executed")
    assert "Executed: Open a SOL/USDT:USDT long of 0.1 SOL" in opened
    async with services.sessions() as session:
        user = await users_repo.find_user_or_none(session, "telegram", str(ALICE))
    assert user is not None and user.id is not None
    assert await sol_size(services, user.id) == pytest.approx(0.1)
    closing = await reply_to(fake, ALICE, ALICE, "/close sol half")
    assert "Close 50% of the SOL/USDT:USDT long (0.05 of 0.1 SOL)" in closing
    closed = await _press_and_wait(fake, "Executed")
    assert not [a for a in fake.callback_answers() if "quickly" in a.get("text", "")]
    assert "Realised PnL" in closed
    positions = await reply_to(fake, ALICE, ALICE, "/positions")
    assert "SOL/USDT:USDT long 0.05 @" in positions and ", stop " in positions
    assert await executions(services) == 2 and await sol_size(services, user.id) == pytest.approx(0.05)
