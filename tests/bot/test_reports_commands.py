"""Report commands through the access chain: /subscribe grammar and refusals, group admins only, /unsubscribe,
/subscriptions, /reports, /scan (stored once a day)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from bastion.app import Services
from bot.core.dispatcher import BotCore
from bot.core.messages import ChatKind
from storage.models import Report, ReportSubscription, ScanRun
from tests.bot.telegram_harness import ALICE, BOB
from tests.bot.test_access import core_with
from tests.bot.test_core import RecordingReplier, said

FAST = {"burst": 50, "rate_per_minute": 600}


@dataclass
class AdminReplier(RecordingReplier):
    """A channel adapter that answers the group-admin question."""

    admin: bool = False
    asked: int = 0

    async def is_chat_admin(self) -> bool:
        self.asked += 1
        return self.admin


async def subs(services: Services) -> list[ReportSubscription]:
    async with services.sessions() as session:
        return list((await session.scalars(select(ReportSubscription).order_by(ReportSubscription.id))).all())


async def ask(core: BotCore, user: int, text: str, replier: RecordingReplier | None = None, group: bool = False) -> str:
    r = replier or RecordingReplier()
    await core.handle(said(user, text, ChatKind.GROUP if group else ChatKind.PRIVATE), r)
    return r.sent[-1].text


async def test_subscribe_grammar_and_refusals(sqlite_url: str, tmp_path: Path) -> None:
    async with core_with(sqlite_url, tmp_path, bot=FAST) as (services, core):
        text = await ask(core, ALICE, "/subscribe btc eth every 6h tz Asia/Tokyo quiet 23-07")
        assert "reports BTC, ETH on 4h, every 6h (Asia/Tokyo), quiet 23-07" in text and "Next: " in text
        (sub,) = await subs(services)
        assert (sub.chat_ref, sub.is_group, sub.every_hours, sub.quiet_start, sub.quiet_end) == (
            str(ALICE), False, 6, 23, 7,
        )  # fmt: skip
        assert sub.last_slot is not None  # the first delivery is the next slot, not a catch-up
        # Adding a symbol keeps the others; a cron schedule replaces the interval.
        text = await ask(core, ALICE, "/subscribe sol cron 0 8 * * * tz UTC+9")
        assert "reports BTC, ETH, SOL on 4h, cron '0 8 * * *' (UTC+9)" in text
        for bad, why in (
            ("/subscribe nope", "has no reports"),
            ("/subscribe btc every 5h", "does not divide a day"),
            ("/subscribe btc cron 0 8 *", "ive fields"),
            ("/subscribe btc tz Mars/Base", "Unknown time zone"),
            ("/subscribe btc quiet 22", "uiet hours are written like 22-07"),
            ("/subscribe btc every 4h on 5m", "Timeframe: Input should be"),
        ):
            answer = await ask(core, ALICE, bad)
            assert why in answer and "Usage: `/subscribe" in answer, (bad, answer)
        (sub,) = await subs(services)
        assert sub.symbols == ["BTC", "ETH", "SOL"] and sub.cron == "0 8 * * *"  # refusals changed nothing
        assert "has no reports" in await ask(core, ALICE, "/unsubscribe nope")
        assert "still subscribed" in await ask(core, ALICE, "/unsubscribe eth")
        assert (await subs(services))[0].symbols == ["BTC", "SOL"]
        listing = await ask(core, ALICE, "/subscriptions")
        assert "reports BTC, SOL on 4h" in listing
        assert "no longer receives reports" in await ask(core, ALICE, "/unsubscribe")
        assert await subs(services) == []
        assert "no report subscription" in await ask(core, ALICE, "/unsubscribe")


async def test_in_a_group_only_admins_subscribe_it(sqlite_url: str, tmp_path: Path) -> None:
    async with core_with(sqlite_url, tmp_path, bot=FAST) as (services, core):
        member, admin = AdminReplier(admin=False), AdminReplier(admin=True)
        assert "Only this group's admins" in await ask(core, BOB, "/subscribe btc", member, group=True)
        assert "Only this group's admins" in await ask(core, BOB, "/subscribe scan", member, group=True)
        # A channel that cannot tell who the admins are is refused too.
        assert "Only this group's admins" in await ask(core, BOB, "/subscribe btc", group=True)
        assert await subs(services) == [] and member.asked == 2
        assert "Subscribed this chat" in await ask(core, ALICE, "/subscribe scan", admin, group=True)
        (sub,) = await subs(services)
        assert (sub.chat_ref, sub.kind, sub.is_group, sub.every_hours) == ("-100", "scan", True, 24)
        assert "daily elite scan" in await ask(core, BOB, "/subscriptions", member, group=True)
        assert "Only this group's admins" in await ask(core, BOB, "/unsubscribe scan", member, group=True)
        assert "no longer receives the scan" in await ask(core, ALICE, "/unsubscribe scan", admin, group=True)
        # In a private chat nobody else is affected: no admin question is asked.
        private = AdminReplier(admin=False)
        assert "Subscribed this chat" in await ask(core, BOB, "/subscribe eth", private)
        assert private.asked == 0


async def test_scan_is_stored_once_a_day_and_reports_list(sqlite_url: str, tmp_path: Path) -> None:
    async with core_with(sqlite_url, tmp_path, bot=FAST, reports={"watchlist": ["BTC", "ETH"]}) as (services, core):
        first = await ask(core, ALICE, "/scan")
        assert first.startswith("**Elite scan**") and ": 2 symbols x 3 timeframes" in first and "Scan #1." in first
        assert "Scan #1." in await ask(core, BOB, "/scan")  # today's scan is reused
        async with services.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ScanRun)) == 1
        assert "No stored reports yet" in await ask(core, ALICE, "/reports")
        assert "has no reports" in await ask(core, ALICE, "/report doge2")
        async with services.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Report)) == 0
