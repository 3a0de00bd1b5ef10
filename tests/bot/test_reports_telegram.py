"""End to end on the real PTB against the fake Bot API: a group subscribed to BTC every 4 h by its admin
receives each slot's report with its chart, once, through the server's own delivery worker."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bastion.reports import build_report_jobs
from bastion.settings import ExchangeSettings
from engine.reports.schedule import Schedule
from storage.models import ReportSubscription
from storage.types import utcnow
from tests.bot.telegram_harness import ALICE, BOB, GROUP, Running, bot_settings, running, telegram_services
from tests.fakes.telegram_api import FakeTelegram


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server."""
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram, sqlite_url: str, tmp_path: Path, ohlcv_dir: Path) -> AsyncIterator[Running]:
    """`bastion serve` with Telegram (polling) on real candles."""
    settings = bot_settings(fake, sqlite_url, tmp_path).model_copy(
        update={"exchange": ExchangeSettings(market_data="replay", data_dir=ohlcv_dir)}
    )
    async with telegram_services(settings) as services, running(services, fake) as run:
        yield run


async def reply(fake: FakeTelegram, chat: int, user: int, text: str, chat_type: str = "private") -> str:
    before = len(fake.sent(chat))
    fake.user_message(chat, user, text, chat_type=chat_type)
    await fake.wait_for(lambda: len(fake.sent(chat)) > before, timeout=20)
    return fake.sent(chat)[before].plain or ""


async def test_a_group_subscribed_to_btc_every_4h_gets_reports_with_charts(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    fake.chat_admins[GROUP] = {ALICE}
    refused = await reply(fake, GROUP, BOB, "/subscribe btc every 4h", "group")
    assert "Only this group's admins can use /subscribe" in refused
    done = await reply(fake, GROUP, ALICE, "/subscribe btc every 4h", "group")
    assert "Subscribed this chat" in done and "reports BTC on 4h, every 4h (UTC)" in done
    async with services.sessions.begin() as session:
        sub = (await session.scalars(select(ReportSubscription))).one()
        assert (sub.platform, sub.chat_ref, sub.is_group, sub.symbols) == ("telegram", str(GROUP), True, ["BTC"])
        # As if it was made 12 hours ago: the job body then runs at the three slots since, in order.
        latest = Schedule(every_hours=4).latest_slot(utcnow())
        assert latest is not None
        sub.last_slot = latest - timedelta(hours=12)
    jobs = build_report_jobs(services, frozenset({"telegram"}))
    sent_before = len(fake.sent(GROUP))
    for n, slot in enumerate((latest - timedelta(hours=8), latest - timedelta(hours=4)), start=1):
        stats = await jobs.tick(slot + timedelta(minutes=1))
        assert (stats.delivered, stats.queued) == (1, 2)
        assert (await jobs.tick(slot + timedelta(minutes=2))).queued == 0  # the next check sends nothing again
        await fake.wait_for(lambda n=n: len(fake.sent(GROUP)) >= sent_before + 2 * n, timeout=30)
    got = fake.sent(GROUP)[sent_before:]
    assert len(got) == 4
    photos, texts = got[0::2], got[1::2]
    assert all(p.photo_size and p.photo_size > 20_000 for p in photos)  # real PNG charts
    assert all((p.plain or "").startswith("BTC/USDT:USDT 4h: ") for p in photos)
    assert all("BTC/USDT:USDT 4h report" in (t.plain or "") and "Key levels" in (t.plain or "") for t in texts)
    assert "First report" in (texts[0].plain or "") and "Bias unchanged" in (texts[1].plain or "")
    # A group gets at most one message per 3 s (20 a minute).
    stamps = [m.at for m in got]
    assert all(b - a >= 2.9 for a, b in itertools.pairwise(stamps))
    listing = await reply(fake, ALICE, ALICE, "/reports btc")
    assert listing.count("BTC/USDT:USDT 4h") == 2
    subs = await reply(fake, GROUP, BOB, "/subscriptions", "group")  # reading is for everyone
    assert "reports BTC on 4h, every 4h (UTC)" in subs
    assert "Only this group's admins" in await reply(fake, GROUP, BOB, "/unsubscribe", "group")
    assert "no longer receives reports" in await reply(fake, GROUP, ALICE, "/unsubscribe", "group")


async def test_free_text_on_telegram_subscribes_a_group_by_its_admin_and_makes_a_report(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    fake.chat_admins[GROUP] = {ALICE}
    words = "@bastion_test_bot subscribe this group to BTC and ETH reports every 4 hours"
    refused = await reply(fake, GROUP, BOB, words, "group")
    assert refused == await reply(fake, GROUP, BOB, "/subscribe btc eth every 4h", "group")
    assert refused.startswith("Only this group's admins can use /subscribe here")
    done = await reply(fake, GROUP, ALICE, words, "group")
    assert "Subscribed this chat" in done and "reports BTC, ETH on 4h, every 4h (UTC)" in done
    async with services.sessions() as session:
        sub = (await session.scalars(select(ReportSubscription))).one()
    assert (sub.chat_ref, sub.is_group, sub.symbols, sub.every_hours) == (str(GROUP), True, ["BTC", "ETH"], 4)
    listing = await reply(fake, GROUP, BOB, "@bastion_test_bot what is this group subscribed to?", "group")
    assert "reports BTC, ETH on 4h, every 4h (UTC)" in listing
    # "give me a BTC report" is /report btc: the report now, with its chart, stored.
    before = len(fake.sent(ALICE))
    fake.user_message(ALICE, ALICE, "give me a BTC report")
    await fake.wait_for(lambda: len(fake.sent(ALICE)) >= before + 2, timeout=30)
    photo, text = fake.sent(ALICE)[before : before + 2]
    assert photo.photo_size and photo.photo_size > 20_000
    assert "BTC/USDT:USDT 4h report" in (text.plain or "") and "Stored as report #1." in (text.plain or "")
