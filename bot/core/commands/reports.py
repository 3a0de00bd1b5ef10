"""Report commands: /report now, /reports stored, /subscribe /unsubscribe /subscriptions per chat, /scan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.core.commands.args import Timeframe
from bot.core.commands.deps import CommandDeps
from bot.core.messages import ChatKind, Outbound
from bot.core.registry import Command, CommandCall, CommandRegistry, UsageError
from engine.reports.body import DEFAULT_SYMBOLS, REPORT_SYMBOLS
from engine.reports.build import ReportError
from engine.reports.jobs import ReportJobs, schedule_of
from engine.reports.phrases import subscribe_tokens, unsubscribe_tokens
from engine.reports.schedule import Schedule, ScheduleError
from storage.models import ReportSubscription
from storage.repositories import reports as reports_repo
from storage.repositories import subscriptions as subs_repo
from tools.market.base import MarketDataError
from tools.market.symbols import parse_symbol

NOT_RUNNING = "Reports are not available in this deployment."
LISTED = 5


def _base(token: str) -> str:
    try:
        base = parse_symbol(token).base
    except (ValueError, MarketDataError):
        base = token.upper()
    if base not in REPORT_SYMBOLS:
        raise ValueError(f"{token!r} has no reports; choose from {', '.join(REPORT_SYMBOLS)}")
    return base


ReportSymbol = Annotated[str, BeforeValidator(_base)]


class ReportArgs(BaseModel):
    """A report symbol and an optional timeframe."""

    model_config = ConfigDict(extra="forbid")

    symbol: ReportSymbol
    timeframe: Timeframe = "4h"


class ReportsArgs(BaseModel):
    """An optional symbol filter."""

    model_config = ConfigDict(extra="forbid")

    symbol: ReportSymbol | None = None


class SubscribeArgs(BaseModel):
    """What to receive (reports of symbols, or the scan) and when."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["report", "scan"] = "report"
    symbols: list[ReportSymbol] = Field(default_factory=list)
    every_hours: int | None = None
    cron: str | None = None
    tz: str = "UTC"
    quiet: tuple[int, int] | None = None
    timeframe: Timeframe = "4h"

    @field_validator("symbols")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _schedule(self) -> SubscribeArgs:
        self.schedule()  # ScheduleError is a ValueError: the registry turns it into the usage message
        return self

    def schedule(self) -> Schedule:
        """The schedule asked for (default: every 4 hours for reports, daily at local midnight for the scan)."""
        every = self.every_hours
        if every is None and self.cron is None:
            every = 24 if self.kind == "scan" else 4
        return Schedule(every_hours=every, cron=self.cron, tz=self.tz, quiet=self.quiet)


def _hours(token: str) -> int:
    text = token.lower().removesuffix("h")
    if not text.isdigit():
        raise UsageError(f"{token!r} is not a number of hours (like 4h)")
    return int(text)


def parse_subscribe(tokens: list[str]) -> dict[str, Any]:
    """`[scan] [SYMBOL...] [every 4h | cron m h dom mon dow] [tz ZONE] [quiet 22-07] [on 1h]`."""
    out: dict[str, Any] = {"symbols": []}
    i = 0
    while i < len(tokens):
        word = tokens[i].lower()
        rest = tokens[i + 1 :]
        if word == "scan" and i == 0:
            out["kind"] = "scan"
            i += 1
        elif word == "every" and rest:
            out["every_hours"] = _hours(rest[0])
            i += 2
        elif word == "cron":
            if len(rest) < 5:
                raise UsageError("a cron expression has five fields, like cron 0 8 * * *")
            out["cron"] = " ".join(rest[:5])
            i += 6
        elif word in ("tz", "timezone") and rest:
            out["tz"] = rest[0]
            i += 2
        elif word == "quiet" and rest:
            start, sep, end = rest[0].partition("-")
            if not (sep and start.isdigit() and end.isdigit()):
                raise UsageError(f"quiet hours are written like 22-07, not {rest[0]!r}")
            out["quiet"] = (int(start), int(end))
            i += 2
        elif word == "on" and rest:
            out["timeframe"] = rest[0]
            i += 2
        else:
            out["symbols"].append(tokens[i])
            i += 1
    return out


def parse_subscribe_words(tokens: list[str]) -> dict[str, Any]:
    """`parse_subscribe` of the arguments typed as tokens or in words ("btc and eth every 4 hours")."""
    return parse_subscribe(subscribe_tokens(" ".join(tokens)))


def _describe(sub: ReportSubscription) -> str:
    try:
        when = schedule_of(sub).describe()
    except ScheduleError:
        when = "an unusable schedule"
    if sub.kind == "scan":
        return f"- daily elite scan, {when}"
    return f"- reports {', '.join(sub.symbols)} on {sub.timeframe}, {when}"


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add the report, subscription and scan commands."""

    def jobs() -> ReportJobs:
        if deps.reports is None:
            raise ReportError(NOT_RUNNING)
        return deps.reports

    async def report(call: CommandCall) -> Outbound:
        a: ReportArgs = call.args
        try:
            stored = await jobs().service.create(a.symbol, a.timeframe, kind="on_demand")
        except ReportError as exc:
            return Outbound(exc.user_message)
        return Outbound(f"{stored.built.text}\n\nStored as report #{stored.row.id}.", photo=stored.built.chart)

    async def reports(call: CommandCall) -> Outbound:
        a: ReportsArgs = call.args
        jobs()
        symbol = None if a.symbol is None else parse_symbol(a.symbol).unified
        async with deps.sessions() as session:
            rows = await reports_repo.list_reports(session, symbol, LISTED)
        if not rows:
            return Outbound("No stored reports yet; `/report BTC` makes one now.")
        lines = ["**Latest reports**"]
        for r in rows:
            conf = "" if r.confidence is None else f", confidence {100 * r.confidence:.0f}%"
            lines.append(f"#{r.id} {r.symbol} {r.timeframe} {r.created_at:%Y-%m-%d %H:%M} UTC: {r.bias}{conf}")
        return Outbound("\n".join(lines))

    def _chat(call: CommandCall) -> tuple[str, str, bool]:
        inbound = call.inbound
        return inbound.platform, inbound.chat_ref, inbound.chat_kind is ChatKind.GROUP

    async def subscribe(call: CommandCall) -> Outbound:
        a: SubscribeArgs = call.args
        jobs()
        platform, chat, group = _chat(call)
        schedule = a.schedule()
        now = datetime.now(UTC)
        async with deps.sessions.begin() as session:
            current = await subs_repo.get_subscription(session, platform, chat, a.kind)
            symbols: list[str] = []
            if a.kind == "report":
                symbols = list(dict.fromkeys([*(current.symbols if current else []), *a.symbols]))
                symbols = symbols or list(DEFAULT_SYMBOLS)
            values = {
                "symbols": symbols,
                "is_group": group,
                "timeframe": a.timeframe,
                "every_hours": schedule.every_hours,
                "cron": schedule.cron,
                "timezone": schedule.tz,
                "quiet_start": schedule.quiet[0] if schedule.quiet else None,
                "quiet_end": schedule.quiet[1] if schedule.quiet else None,
                "created_by": call.user_id,
                "enabled": True,
                # The first delivery is the next slot from now, never a catch-up of one before subscribing.
                "last_slot": schedule.latest_slot(now) or now,
            }
            sub = await subs_repo.upsert_subscription(session, platform, chat, a.kind, values)
            text = _describe(sub)
        nxt = schedule.next_slot(now)
        when = f" Next: {nxt:%Y-%m-%d %H:%M} UTC." if nxt else ""
        return Outbound(f"Subscribed this chat:\n{text}.{when}")

    async def unsubscribe(call: CommandCall) -> Outbound:
        jobs()
        platform, chat, _ = _chat(call)
        tokens = unsubscribe_tokens(call.inbound.command[1]) if call.inbound.command else []
        kind = "scan" if tokens[:1] == ["scan"] else "report"
        async with deps.sessions.begin() as session:
            sub = await subs_repo.get_subscription(session, platform, chat, kind)
            if sub is None:
                return Outbound(f"This chat has no {kind} subscription.")
            drop = {_base(t) for t in tokens} if kind == "report" and tokens else set()
            keep = [s for s in sub.symbols if s not in drop]
            if drop and keep:
                sub.symbols = keep
                await session.flush()
                return Outbound(f"Unsubscribed {', '.join(sorted(drop))}; still subscribed:\n{_describe(sub)}.")
            await subs_repo.delete_subscription(session, sub)
        return Outbound(f"This chat no longer receives {'the scan' if kind == 'scan' else 'reports'}.")

    async def subscriptions(call: CommandCall) -> Outbound:
        platform, chat, _ = _chat(call)
        async with deps.sessions() as session:
            subs = await subs_repo.chat_subscriptions(session, platform, chat)
        if not subs:
            return Outbound("This chat has no subscriptions; `/subscribe BTC ETH every 4h` starts reports.")
        return Outbound("**Subscriptions of this chat**\n" + "\n".join(_describe(s) for s in subs))

    async def scan(call: CommandCall) -> Outbound:
        j = jobs()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        async with deps.sessions() as session:
            row = await reports_repo.latest_scan(session, since=today)
        if row is None:
            row = await j.run_scan()
        return Outbound(f"{row.text}\n\nScan #{row.id}.")

    def _unsub_parse(tokens: list[str]) -> dict[str, Any]:
        for t in unsubscribe_tokens(" ".join(tokens)):
            if t != "scan":
                try:
                    _base(t)  # an unknown symbol is refused before anything changes
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
        return {}

    for c in (
        Command("report", "Market-structure report of a symbol now", report, ReportArgs, "<symbol> [15m|1h|4h|1d]",
                "/report btc"),
        Command("reports", "The latest stored reports", reports, ReportsArgs, "[symbol]", "/reports eth"),
        Command("subscribe", "Scheduled reports or the daily scan in this chat", subscribe, SubscribeArgs,
                "[scan] [symbols] [every 4h | cron 0 8 * * *] [tz Asia/Tokyo] [quiet 22-07]",
                "/subscribe btc eth every 4h tz UTC+9", parse=parse_subscribe_words, group_admin=True),
        Command("unsubscribe", "Stop reports (or some symbols, or the scan) in this chat", unsubscribe,
                usage="[scan | symbols]", example="/unsubscribe sol", parse=_unsub_parse, group_admin=True),
        Command("subscriptions", "This chat's report and scan subscriptions", subscriptions),
        Command("scan", "Today's elite setups over the watchlist", scan),
    ):  # fmt: skip
        reg.add(c)
