"""Alert commands through the bot core: /alert echo and [Confirm] [Cancel] (owner only, once, before expiry, no
trader role needed), free text, /alerts with ids and opt-ins, /alert off, groups, and critical position alerts
whose buttons go through the approvals service to an order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bastion.app import Services
from bastion.serve import build_core
from bot.core.dispatcher import BotCore
from bot.core.messages import ButtonPress, ChatKind, Outbound
from bot.core.notify import OutboxNotifier
from engine.alerts import Alert, ProposedAction
from storage.alerts import AlertRule
from storage.models import Approval, Outbox
from storage.repositories import alerts as alerts_repo
from storage.types import utcnow
from tests.bot.telegram_harness import ALICE, BOB, executions, sol_size, telegram_services, trader_with_sol_long
from tests.bot.test_core import RecordingReplier, said, settings

RULE = "tell me when BTC funding is above 0.05% while price holds above the 4h POC"


@pytest.fixture
async def core_on(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, BotCore]]:
    """A core over migrated services; ALICE may trade, BOB may not (alerts need no trading role)."""
    from agents.persistence import sqlite_persistence
    from agents.wiring import build_chat

    s = settings(sqlite_url, tmp_path, allowed_users=[f"telegram:{ALICE}"], bot={"burst": 50})
    async with telegram_services(s) as services, sqlite_persistence(tmp_path / "cp.db") as persistence:
        yield services, build_core(services, build_chat(services, persistence), persistence.store)


async def _ask(core: BotCore, user: int, text: str, kind: ChatKind = ChatKind.PRIVATE) -> Outbound:
    replier = RecordingReplier()
    await core.handle(said(user, text, kind), replier)
    assert replier.sent, f"no answer to {text!r}"
    return replier.sent[-1]


async def _press(core: BotCore, user: int, data: str, kind: ChatKind = ChatKind.PRIVATE) -> RecordingReplier:
    chat = str(user) if kind is ChatKind.PRIVATE else "-100"
    replier = RecordingReplier()
    await core.press(ButtonPress("telegram", str(user), chat, f"{chat}:9", data, kind), replier)  # type: ignore[arg-type]
    return replier


async def _rules(services: Services) -> list[AlertRule]:
    async with services.sessions() as s:
        return list((await s.scalars(select(AlertRule).order_by(AlertRule.id))).all())  # type: ignore[arg-type]


async def test_alert_is_echoed_then_confirmed_once_by_its_owner(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    echo = await _ask(core, BOB, f"/alert {RULE}")  # BOB may not trade: alerts are not trading
    assert "BTC: funding above 0.05% per 8h and price above the 4h POC; at most once every hour" in echo.text
    assert [b.label for b in echo.buttons] == ["Confirm", "Cancel"]
    [rule] = await _rules(services)
    assert rule.status == "pending" and rule.spec["conditions"][1]["level"] == "poc"
    confirm = echo.buttons[0].data
    stranger = await _press(core, ALICE, confirm)
    assert "someone else" in stranger.answers[0] and (await _rules(services))[0].status == "pending"
    first, second = await asyncio.gather(_press(core, BOB, confirm), _press(core, BOB, confirm))
    answers = first.answers + second.answers
    assert answers.count("Confirmed.") == 1 and any("Already confirmed" in a for a in answers)
    edited = (first.edits + second.edits)[0][1].text
    assert f"Alert #{rule.id} is on" in edited and "placing the order" not in " ".join(answers)
    assert (await _rules(services))[0].status == "active"
    # Cancel after Confirm does nothing: the button is spent.
    late = await _press(core, BOB, echo.buttons[1].data)
    assert "Already confirmed" in late.answers[0] and (await _rules(services))[0].status == "active"
    assert await executions(services) == 0


async def test_cancel_and_expiry_leave_no_rule_on(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    first = await _ask(core, ALICE, "/alert ETH below 3000")
    pressed = await _press(core, ALICE, first.buttons[1].data)
    assert pressed.answers == ["Cancelled."] and "no alert was set" in pressed.edits[0][1].text
    second = await _ask(core, ALICE, "/alert SOL above 300")
    async with services.sessions.begin() as s:
        await s.execute(update(Approval).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = await _press(core, ALICE, second.buttons[0].data)
    assert "expired" in expired.answers[0]
    assert [r.status for r in await _rules(services)] == ["cancelled", "pending"]
    listing = await _ask(core, ALICE, "/alerts")
    assert "none yet" not in listing.text and "(pending)" in listing.text


async def test_free_text_becomes_the_same_rule(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    out = await _ask(core, ALICE, RULE.capitalize())
    assert "BTC: funding above 0.05% per 8h and price above the 4h POC" in out.text
    assert [b.label for b in out.buttons] == ["Confirm", "Cancel"]
    assert len(await _rules(services)) == 1
    # Not an alert request: the analyst answers as before, no rule is made.
    other = await _ask(core, ALICE, "what's the price of bitcoin?")
    assert "[offline model]" in other.text and len(await _rules(services)) == 1


async def test_unreadable_rules_are_refused_with_examples_and_change_nothing(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    for text in ("/alert tell me a joke", "/alert BTC funding above", "tell me when BTC is nice"):
        out = await _ask(core, ALICE, text)
        assert out.text.startswith("I could not turn that into a rule.") and "Examples:" in out.text, out.text
        assert out.buttons == []
    usage = await _ask(core, ALICE, "/alert")
    assert "Describe the alert" in usage.text
    assert await _rules(services) == []


async def test_alerts_lists_ids_and_alert_off_removes_one(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    ids = []
    for text in ("/alert BTC above 100k", "/alert ETH below 2000"):
        out = await _ask(core, ALICE, text)
        await _press(core, ALICE, out.buttons[0].data)
        ids.append((await _rules(services))[-1].id)
    listing = await _ask(core, ALICE, "/alerts")
    assert f"#{ids[0]} BTC: price above 100,000" in listing.text and f"#{ids[1]} ETH: price below 2,000" in listing.text
    group = await _ask(core, ALICE, "/alerts", ChatKind.GROUP)
    assert "Alerts this group receives" in group.text and "BTC: price above" not in group.text  # rules are personal
    assert (await _ask(core, BOB, f"/alert off {ids[0]}")).text.startswith(f"You have no alert #{ids[0]}")
    assert (await _ask(core, ALICE, f"/alert off {ids[0]}")).text == f"Alert #{ids[0]} is off."
    assert [r.status for r in await _rules(services)] == ["off", "active"]
    assert f"#{ids[0]}" not in (await _ask(core, ALICE, "/alerts")).text


async def test_opt_ins_and_quiet_hours_from_chat(core_on: tuple[Services, BotCore]) -> None:
    services, core = core_on
    assert "Market alerts for BTC on for you" in (await _ask(core, BOB, "/alerts on market btc")).text
    assert "Quiet hours 22:00-07:00 UTC" in (await _ask(core, BOB, "/alerts quiet 22-7")).text
    assert "0-23" in (await _ask(core, BOB, "/alerts quiet 25-7")).text
    listing = (await _ask(core, BOB, "/alerts")).text
    assert "market BTC: on, quiet 22-07 UTC" in listing and "position: on, quiet 22-07 UTC" in listing
    assert "Position alerts are personal" not in (await _ask(core, BOB, "/alerts off position")).text
    async with services.sessions() as s:
        user_id = (await core.user("telegram", str(BOB))).user_id
        assert await alerts_repo.user_recipient(s, user_id, "position") is None  # opted out of position alerts
        [btc] = await alerts_repo.recipients(s, "market", "BTC")
        assert btc.chat == str(BOB) and btc.quiet_hours == (22, 7)
        assert await alerts_repo.recipients(s, "market", "ETH") == []
    # In a group only an admin changes the group's alerts.
    assert "Only an admin" in (await _ask(core, BOB, "/alerts on market", ChatKind.GROUP)).text


async def test_critical_position_alert_buttons_go_through_the_approvals_service(
    core_on: tuple[Services, BotCore],
) -> None:
    services, core = core_on
    user_id = await trader_with_sol_long(services, ALICE)
    where = {"account_id": 1, "symbol": "SOL/USDT:USDT", "side": "long", "size": "10"}
    alert = Alert(
        key="1:SOL/USDT:USDT:long:r_breach",
        type="position",
        severity="critical",
        asset="SOL/USDT:USDT",
        title="SOL/USDT:USDT long: loss beyond 1R (-1.20R)",
        message="The position is at -1.20R; the plan risked 1R.",
        position=where,
        actions=[
            ProposedAction(label="Exit 100%", action="EXIT_FULL", close_pct=100, summary="EXIT 100%: close 10 SOL"),
            ProposedAction(label="Reduce 50%", action="REDUCE_SIZE", close_pct=50, summary="REDUCE 50%: close 5 SOL"),
        ],
    )
    notifier = OutboxNotifier(services.sessions, frozenset({"telegram"}))
    await notifier.send_alert(user_id, alert)
    await notifier.send_alert(user_id, alert)  # a repeat within the hour queues nothing (and no second approval)
    async with services.sessions() as s:
        rows = (await s.scalars(select(Outbox))).all()
        approvals = (await s.scalars(select(Approval))).all()
    assert len(rows) == 1 and len(approvals) == 2
    buttons = rows[0].payload["buttons"]
    assert [b["label"] for b in buttons] == ["Exit 100%", "Reduce 50%"]
    stranger = await _press(core, BOB, buttons[1]["data"])
    assert await sol_size(services, user_id) == pytest.approx(10.0) and stranger.answers
    reduce = await _press(core, ALICE, buttons[1]["data"])
    assert "placing the order" in reduce.answers[0] and "Executed" in reduce.edits[0][1].text
    assert await sol_size(services, user_id) == pytest.approx(5.0)
    again = await _press(core, ALICE, buttons[1]["data"])
    assert "Already executed" in again.answers[0] and await executions(services) == 1
    # Quiet hours over this hour and the next: a warning waits until they end, without buttons; a critical one is
    # sent now.
    hour = utcnow().hour
    async with services.sessions.begin() as s:  # two hours: the notifier reads its own clock, maybe past the hour
        await alerts_repo.set_quiet_hours(s, (hour, (hour + 2) % 24), user_id=user_id)
    warning = alert.model_copy(update={"key": "1:SOL/USDT:USDT:long:stop_near", "severity": "warning"})
    critical = alert.model_copy(update={"key": "1:SOL/USDT:USDT:long:emergency"})
    await notifier.send_alert(user_id, warning)
    await notifier.send_alert(user_id, critical)
    async with services.sessions() as s:
        held, now_row = (await s.scalars(select(Outbox).where(Outbox.id > rows[0].id).order_by(Outbox.id))).all()  # type: ignore[arg-type, operator]
    assert held.payload["buttons"] == [] and held.next_attempt_at > utcnow()
    assert held.next_attempt_at.hour == (hour + 2) % 24 and held.next_attempt_at.minute == 0
    assert len(now_row.payload["buttons"]) == 2 and now_row.next_attempt_at <= utcnow()


async def test_at_most_twenty_live_rules_per_user(core_on: tuple[Services, BotCore]) -> None:
    from agents.offline.intents import find_symbol
    from engine.alerts.confirm import propose_rule
    from engine.alerts.parse import parse_rule

    services, core = core_on
    user_id = (await core.user("telegram", str(ALICE))).user_id
    spec = parse_rule("BTC above 100k", find_symbol)
    async with services.sessions.begin() as s:
        for _ in range(20):
            await propose_rule(s, user_id=user_id, platform="telegram", chat_ref=str(ALICE), text="x", spec=spec)
    refused = await _ask(core, ALICE, "/alert ETH above 5000")
    assert refused.text.startswith("You have 20 alert rules") and refused.buttons == []
    # Unconfirmed rules lapse with their buttons: they no longer count.
    async with services.sessions.begin() as s:
        await s.execute(update(AlertRule).values(created_at=utcnow() - timedelta(hours=1)))
    assert [b.label for b in (await _ask(core, ALICE, "/alert ETH above 5000")).buttons] == ["Confirm", "Cancel"]
