"""End to end on Telegram (real PTB against the fake Bot API) over replayed real candles: a user writes an alert
in plain words, confirms it with the button, and receives it when the condition holds, once per cooldown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.alerts.job import AlertJob
from tests.bot.telegram_harness import ALICE, BOB, Running, bot_settings, running, telegram_services
from tests.bot.test_telegram_e2e import buttons_of, reply_to
from tests.fakes.telegram_api import FakeTelegram

START = datetime(2025, 10, 10, 14, tzinfo=UTC)  # BTC about 121,700; its 15:15 candle closes at 119,253


@pytest.fixture
async def bot(sqlite_url: str, tmp_path: Path, ohlcv_dir: Path) -> AsyncIterator[Running]:
    """`bastion serve` with Telegram on the fake and the replay market on the real candles."""
    async with FakeTelegram() as fake:
        settings = bot_settings(fake, sqlite_url, tmp_path)
        settings.exchange.market_data = "replay"
        settings.exchange.data_dir = ohlcv_dir
        async with telegram_services(settings) as services, running(services, fake) as run:
            services.market.set_now(START)  # type: ignore[attr-defined]
            yield run


async def test_plain_words_alert_confirmed_and_received(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    echo = await reply_to(fake, BOB, BOB, "Tell me when BTC drops below 120000, at most once every 2h")
    assert "BTC: price below 120,000; at most once every 2 hours" in echo
    message_id, data = buttons_of(fake, BOB)
    fake.press_button(BOB, BOB, message_id, data[0])  # Confirm (BOB is not a trader: alerts need no role)
    await fake.wait_for(lambda: "is on" in (fake.message(BOB, message_id).text or ""), timeout=20)
    assert not (fake.message(BOB, message_id).reply_markup or {}).get("inline_keyboard")
    # ALICE's attempt to press BOB's button is refused and changes nothing.
    fake.press_button(BOB, ALICE, message_id, data[1])

    now = [START]
    job = AlertJob(services.sessions, services.market, clock=lambda: now[0])
    before = len(fake.sent(BOB))
    for minutes in range(0, 4 * 60, 15):  # the leader's job, every 15 minutes of replayed time
        now[0] = START + timedelta(minutes=minutes)
        services.market.set_now(now[0])  # type: ignore[attr-defined]
        assert not (await job.run_cycle()).errors
    await fake.wait_for(lambda: len(fake.sent(BOB)) >= before + 2, timeout=20)
    alerts = [m.plain or "" for m in fake.sent(BOB)[before:]]
    # Below 120,000 from 15:30 on (real candles): alerted at 15:30 and again two hours later, nothing more.
    assert len(alerts) == 2 and all("Alert #" in a and "price below 120,000" in a for a in alerts)
    # The prices are the closes of the 15:15 and 17:15 candles, the last ones closed at 15:30 and 17:30.
    assert "Now: price 119,253." in alerts[0] and "Now: price 118,151." in alerts[1]
    assert "/alert off 1" in alerts[0]
    assert fake.sent(ALICE) == []  # nothing of BOB's reached anyone else
