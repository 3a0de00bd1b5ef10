"""Alert commands: rules in plain words (/alert), the list and opt-ins (/alerts), and the same from free text.

`/alert <text>` reads the rule (grammar, then the configured model), echoes it in plain words with [Confirm]
[Cancel] (an approval row: owner only, once, before expiry), and the alert job checks it once confirmed.
`/alerts` lists the user's rules with ids and their opt-ins; `/alerts on|off <topic> [symbol]` and
`/alerts quiet <start>-<end>|off` set them (in a group, for the group, by an admin).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from agents.offline.intents import find_symbol
from bot.core.commands.deps import CommandDeps
from bot.core.messages import Button, Outbound, approval_buttons
from bot.core.registry import Command, CommandCall, CommandRegistry, Permission
from engine.alerts.confirm import CONFIRM_LABELS, CONFIRM_TTL, propose_rule
from engine.alerts.parse import EXAMPLES, UNPARSEABLE, read_rule
from engine.alerts.rules import RuleError
from storage.alerts import AlertRule
from storage.models import AlertSubscription
from storage.repositories import alerts as alerts_repo
from storage.types import utcnow

MAX_RULES = 20  # pending and active rules per user: each one is read every cycle
_OFF = re.compile(r"^(?:off|delete|remove|stop)\s+#?(\d+)$")
_QUIET = re.compile(r"^quiet\s+(?:(off|none)|(\d{1,2})\s*-\s*(\d{1,2}))$")
_TOPIC = re.compile(r"^(on|off)\s+(market|technical|onchain|on-chain|position|all)(?:\s+([A-Za-z0-9]{2,20}))?$")
TOPIC_USAGE = (
    "`/alerts on market [BTC]`, `/alerts off technical`, `/alerts quiet 22-7` (UTC), `/alerts quiet off`. "
    "Topics: market (funding, open interest, volume), technical (CVD divergence, your own rules), onchain "
    "(whale transfers), position (your positions)."
)


class TextArgs(BaseModel):
    """The whole argument text, read by the command itself."""

    model_config = ConfigDict(extra="forbid")

    text: str = ""


def _text(tokens: list[str]) -> dict[str, Any]:
    return {"text": " ".join(tokens)}


def examples_text() -> str:
    """The examples shown with a refusal and the usage."""
    return "Examples:\n" + "\n".join(f"`{e}`" for e in EXAMPLES)


def rule_buttons(token: str) -> list[Button]:
    """[Confirm] [Cancel] over the approval machinery (same payloads as Approve / Reject)."""
    approve, reject = approval_buttons(token)
    return [Button(CONFIRM_LABELS[0], approve.data), Button(CONFIRM_LABELS[1], reject.data)]


def _live(rules: list[AlertRule]) -> list[AlertRule]:
    """Active rules and pending ones whose confirmation can still be pressed (an unconfirmed one lapses)."""
    since = utcnow() - CONFIRM_TTL
    return [r for r in rules if r.status == alerts_repo.ACTIVE or r.created_at > since]


def _rule_line(rule: AlertRule) -> str:
    state = "" if rule.status == alerts_repo.ACTIVE else f" ({rule.status})"
    return f"#{rule.id} {rule.description}{state}"


def _subscription_line(row: AlertSubscription) -> str:
    what = f"{row.topic}{' ' + row.symbol if row.symbol else ''}"
    quiet = f", quiet {row.quiet_hours[0]:02d}-{row.quiet_hours[1]:02d} UTC" if row.quiet_hours else ""
    return f"{what}: {'on' if row.enabled else 'off'}{quiet}"


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add /alert and /alerts."""

    async def create(call: CommandCall, text: str) -> Outbound:
        try:
            spec = await read_rule(text, find_symbol, deps.rule_model)
        except RuleError as exc:
            return Outbound(f"{UNPARSEABLE} {str(exc)[:1].upper()}{str(exc)[1:]}.\n{examples_text()}")
        msg = call.inbound
        async with deps.sessions.begin() as session:
            held = _live(await alerts_repo.rules_of(session, call.user_id, (alerts_repo.PENDING, alerts_repo.ACTIVE)))
            if len(held) >= MAX_RULES:
                return Outbound(f"You have {len(held)} alert rules; turn one off first (/alerts lists them).")
            rule, approval = await propose_rule(
                session, user_id=call.user_id, platform=msg.platform, chat_ref=msg.chat_ref, text=text, spec=spec
            )
        return Outbound(
            f"**New alert #{rule.id}**\n{spec.describe()}.\n\nConfirm to switch it on (the buttons work for you only, "
            "for 10 minutes).",
            buttons=rule_buttons(approval.token),
        )

    async def switch_off(call: CommandCall, rule_id: int) -> Outbound:
        async with deps.sessions.begin() as session:
            done = await alerts_repo.move_rule(
                session,
                rule_id,
                call.user_id,
                to=alerts_repo.OFF,
                only_from=(alerts_repo.ACTIVE, alerts_repo.PENDING),
            )
            if done:
                await alerts_repo.forget_firings(session, f"rule:{rule_id}:")
            held = await alerts_repo.rules_of(session, call.user_id)
        if done:
            return Outbound(f"Alert #{rule_id} is off.")
        ids = ", ".join(f"#{r.id}" for r in held) or "none"
        return Outbound(f"You have no alert #{rule_id} that is on. Yours: {ids}.")

    async def alert(call: CommandCall) -> Outbound:
        text = call.args.text.strip()
        if not text:
            return Outbound(f"Describe the alert in plain words.\n{examples_text()}")
        if m := _OFF.match(text.lower()):
            return await switch_off(call, int(m.group(1)))
        return await create(call, text)

    async def settings(call: CommandCall, text: str) -> Outbound:
        msg = call.inbound
        user_id: int | None = call.user_id
        chat_id: int | None = None
        if not msg.is_private:
            if call.permission < Permission.ADMIN:
                return Outbound("Only an admin can change this group's alerts.")
            async with deps.sessions.begin() as session:
                chat_id = await alerts_repo.chat_id_of(session, msg.platform, msg.chat_ref)
            user_id = None
        if m := _QUIET.match(text.lower()):
            hours = None if m.group(1) else (int(m.group(2)), int(m.group(3)))
            if hours is not None and not all(0 <= h <= 23 for h in hours):
                return Outbound("Quiet hours are two hours of the day, 0-23 UTC, like `/alerts quiet 22-7`.")
            async with deps.sessions.begin() as session:
                await alerts_repo.set_quiet_hours(session, hours, user_id=user_id, chat_id=chat_id)
            if hours is None:
                return Outbound("Quiet hours lifted.")
            return Outbound(
                f"Quiet hours {hours[0]:02d}:00-{hours[1]:02d}:00 UTC: alerts wait until they end; critical ones "
                "still come through."
            )
        m = _TOPIC.match(text)
        if m is None:
            return Outbound(f"I did not understand that. {TOPIC_USAGE}")
        on = m.group(1).lower() == "on"
        topic = m.group(2).lower().replace("-", "")
        symbol = m.group(3).upper() if m.group(3) else None
        topics = [t for t in alerts_repo.TOPICS if t != "position" or chat_id is None] if topic == "all" else [topic]
        if chat_id is not None and "position" in topics:
            return Outbound("Position alerts are personal: they go to each trader's private chat.")
        async with deps.sessions.begin() as session:
            for t in topics:
                await alerts_repo.set_subscription(
                    session, topic=t, enabled=on, user_id=user_id, chat_id=chat_id, symbol=symbol
                )
        where = "this group" if chat_id is not None else "you"
        scope = f" for {symbol}" if symbol else ""
        return Outbound(f"{', '.join(topics).capitalize()} alerts{scope} {'on' if on else 'off'} for {where}.")

    async def alerts(call: CommandCall) -> Outbound:
        text = call.args.text.strip()
        if text:
            return await settings(call, text)
        msg = call.inbound
        if not msg.is_private:
            # A group sees only the group's own opt-ins; a member's rules are personal and never listed here.
            async with deps.sessions.begin() as session:
                chat_id = await alerts_repo.chat_id_of(session, msg.platform, msg.chat_ref)
                group = await alerts_repo.subscriptions_of(session, chat_id=chat_id)
            lines = ["**Alerts this group receives**"]
            lines += [_subscription_line(s) for s in group] or ["none (an admin turns them on: `/alerts on market`)"]
            lines += ["", "Your own alert rules are listed in a private chat with me: send /alerts there."]
            return Outbound("\n".join(lines))
        async with deps.sessions() as session:
            rules = _live(await alerts_repo.rules_of(session, call.user_id, (alerts_repo.ACTIVE, alerts_repo.PENDING)))
            subs = await alerts_repo.subscriptions_of(session, user_id=call.user_id)
        lines = ["**Your alert rules**"]
        lines += [_rule_line(r) for r in rules] or ["none yet: `/alert BTC funding above 0.05%`"]
        lines += ["", "**Alerts you receive**"]
        lines += [_subscription_line(s) for s in subs] or ["position alerts (on by default)"]
        lines += ["", TOPIC_USAGE]
        return Outbound("\n".join(lines))

    for c in (
        Command(
            "alert",
            "An alert in plain words, confirmed with a button; /alert off <id> removes one",
            alert,
            TextArgs,
            "<rule in words> | off <id>",
            EXAMPLES[0],
            parse=_text,
        ),
        Command(
            "alerts",
            "Your alert rules with their ids, and which alerts you receive (on/off, quiet hours)",
            alerts,
            TextArgs,
            "[on|off <topic> [symbol] | quiet <start>-<end>|off]",
            "/alerts on market BTC",
            parse=_text,
        ),
    ):
        reg.add(c)
