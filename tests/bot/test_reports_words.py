"""Reports and subscriptions asked in plain words: the same command, validation, messages and group-admin rule as
the slash commands (the grammar, the core in a private chat and in a group)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.offline.intents import parse_request
from engine.reports.phrases import spoken_command
from tests.bot.telegram_harness import ALICE, BOB
from tests.bot.test_access import core_with
from tests.bot.test_reports_commands import FAST, AdminReplier, ask, subs


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("subscribe me to BTC and ETH reports every 4 hours", ("subscribe", "BTC ETH every 4h")),
        ("Could you subscribe this chat to SOL reports every 6 hours in Asia/Tokyo, quiet hours 22 to 7?",
         ("subscribe", "SOL every 6h tz Asia/Tokyo quiet 22-07")),
        ("send me btc reports every four hours on the 1h chart", ("subscribe", "btc every 4h on 1h")),
        ("sign us up for ethereum updates daily at 8am", ("subscribe", "eth cron 0 8 * * *")),
        ("send me the daily scan", ("subscribe", "scan every 24h")),
        ("unsubscribe from reports", ("unsubscribe", "")),
        ("please stop sending me the scan", ("unsubscribe", "scan")),
        ("stop the btc reports", ("unsubscribe", "btc")),
        ("what am I subscribed to?", ("subscriptions", "")),
        ("which subscriptions does this chat have", ("subscriptions", "")),
        ("give me a BTC report", ("report", "btc")),
        ("make a report on eth 1h", ("report", "eth 1h")),
        ("i need a fresh eth report please", ("report", "eth")),
        ("BTC report", ("report", "btc")),
        ("show me today's elite setups", ("scan", "")),
        ("latest sol reports", ("reports", "sol")),
        # Not report requests: other intents keep their own readers.
        ("what is the price of btc", None),
        ("stop loss at 93000 on btc", None),
        ("cancel all orders", None),
        ("tell me when btc is above 100k", None),
        ("/subscribe btc", None),
        ("First report", None),
        ("why is there no report for the scan", None),
        ("No stored reports yet", None),
    ],
)  # fmt: skip
def test_words_read_into_the_slash_grammar(text: str, command: tuple[str, str] | None) -> None:
    assert spoken_command(text) == command


async def test_free_text_subscribes_lists_and_unsubscribes_like_the_slash_commands(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with core_with(sqlite_url, tmp_path, bot=FAST) as (services, core):
        said = await ask(core, ALICE, "subscribe me to BTC and ETH reports every 4 hours")
        assert said.startswith("Subscribed this chat:\n- reports BTC, ETH on 4h, every 4h") and "Next: " in said
        (sub,) = await subs(services)
        assert (sub.kind, sub.symbols, sub.every_hours, sub.chat_ref) == ("report", ["BTC", "ETH"], 4, str(ALICE))
        assert "daily elite scan" in await ask(core, ALICE, "send me the daily scan")
        listing = await ask(core, ALICE, "what am I subscribed to?")
        assert listing == await ask(core, ALICE, "/subscriptions")
        assert "reports BTC, ETH on 4h" in listing and "daily elite scan" in listing
        # A bad request in words is refused with the command's own message and changes nothing.
        bad = await ask(core, ALICE, "subscribe me to PEPE reports every 4 hours")
        assert bad == await ask(core, ALICE, "/subscribe PEPE every 4h")
        assert "has no reports" in bad and "Usage: `/subscribe" in bad
        assert "does not divide a day" in await ask(core, ALICE, "subscribe me to btc reports every 5 hours")
        assert [s.symbols for s in await subs(services)] == [["BTC", "ETH"], []]
        assert "Unsubscribed ETH" in await ask(core, ALICE, "stop the eth reports")
        assert "no longer receives the scan" in await ask(core, ALICE, "please stop sending me the scan")
        assert "no longer receives reports" in await ask(core, ALICE, "unsubscribe from reports")
        assert await subs(services) == []
        assert "no subscriptions" in await ask(core, ALICE, "what am I subscribed to?")


async def test_in_a_group_a_member_saying_it_in_words_is_refused_exactly_as_with_the_slash_command(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with core_with(sqlite_url, tmp_path, bot=FAST) as (services, core):
        member, admin = AdminReplier(admin=False), AdminReplier(admin=True)
        refused = await ask(core, BOB, "subscribe this group to btc reports every 4 hours", member, group=True)
        assert refused == await ask(core, BOB, "/subscribe btc every 4h", member, group=True)
        assert refused.startswith("Only this group's admins can use /subscribe here")
        assert await subs(services) == []
        assert "Subscribed this chat" in await ask(core, ALICE, "subscribe the group to btc reports", admin, group=True)
        (sub,) = await subs(services)
        assert sub.is_group and sub.chat_ref == "-100"
        assert (await ask(core, BOB, "unsubscribe from reports", member, group=True)).startswith(
            "Only this group's admins can use /unsubscribe here"
        )
        assert len(await subs(services)) == 1
        # Reading the group's subscriptions is for everyone.
        assert "reports BTC on 4h" in await ask(core, BOB, "what is this chat subscribed to?", member, group=True)


async def test_a_report_and_the_scan_asked_in_words(sqlite_url: str, tmp_path: Path) -> None:
    async with core_with(sqlite_url, tmp_path, bot=FAST, reports={"watchlist": ["BTC", "ETH"]}) as (_, core):
        assert (await ask(core, ALICE, "show me today's elite setups")).startswith("**Elite scan**")
        assert await ask(core, ALICE, "give me a DOGE2 report") == await ask(core, ALICE, "/report doge2")


def test_where_no_command_runs_a_report_in_words_is_the_offline_models_analysis() -> None:
    req = parse_request("give me a BTC report")
    assert (req.kind, req.symbol, req.timeframe) == ("analyze", "BTC", "4h")
    assert parse_request("make a report on eth 1h").timeframe == "1h"
    assert parse_request("what is the price of btc").kind == "price"
