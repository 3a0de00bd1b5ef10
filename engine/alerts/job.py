"""The scheduled alert cycle: market alerts for everyone opted in, and each confirmed user rule.

Run by the scheduler leader only. Each cycle reads every watched symbol once, evaluates the built-in market
rules and the users' rules, and queues what fired in the outbox; the cooldown stamp of each (condition,
recipient) is written in the same transaction, so an alert fires once per cooldown across cycles, restarts and
processes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts.feeds import LiquidationFeed, WhaleFeed
from engine.alerts.market import market_alerts
from engine.alerts.models import Alert
from engine.alerts.readings import rule_readings, snapshot
from engine.alerts.routing import route
from engine.alerts.rules import RuleSpec
from storage.alerts import AlertRule
from storage.repositories import alerts as alerts_repo
from storage.repositories.alerts import Recipient
from storage.types import utcnow

log = logging.getLogger(__name__)
DEFAULT_WATCHLIST: tuple[str, ...] = ("BTC", "ETH", "SOL")
MARKET_COOLDOWN = timedelta(hours=4)


@dataclass
class AlertCycle:
    """What one cycle did, for logs and tests."""

    symbols: list[str] = field(default_factory=list)
    fired: list[Alert] = field(default_factory=list)  # conditions that held this cycle (before cooldowns)
    queued: int = 0  # outbox rows written (after cooldowns, opt-ins and severity floors)
    errors: list[str] = field(default_factory=list)


def unified(base: str) -> str:
    """The USDT perpetual of a base asset."""
    return f"{base}/USDT:USDT"


class AlertJob:
    """Evaluates market alerts and users' rules once per call of `run_cycle`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        market: object,
        *,
        liquidations: LiquidationFeed | None = None,
        whales: WhaleFeed | None = None,
        watchlist: Iterable[str] = DEFAULT_WATCHLIST,
        cooldown: timedelta = MARKET_COOLDOWN,
        timeframe: str = "1h",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.market = market
        self.liquidations = liquidations
        self.whales = whales
        self.watchlist = tuple(s.upper() for s in watchlist)
        self.cooldown = cooldown
        self.timeframe = timeframe
        self.clock = clock

    async def run_cycle(self) -> AlertCycle:
        """One evaluation of everything; one symbol's or rule's failure never stops the others."""
        report = AlertCycle()
        now = self.clock()
        async with self.sessions() as session:
            anyone, named = await alerts_repo.watched_symbols(session)
            rules = await alerts_repo.active_rules(session)
        if anyone:
            for base in sorted(set(self.watchlist) | named):
                try:
                    await self._market(base, now, report)
                except Exception as exc:  # one symbol's bad data must not stop the others
                    report.errors.append(f"{base}: {exc}")
                    log.warning("alerts: market rules of %s failed", base, exc_info=True)
        by_symbol: dict[str, list[tuple[AlertRule, RuleSpec]]] = defaultdict(list)
        for rule in rules:
            try:
                spec = RuleSpec.model_validate(rule.spec)
            except ValidationError:
                report.errors.append(f"rule {rule.id}: stored spec is invalid")
                continue
            by_symbol[spec.symbol].append((rule, spec))
        for base, items in sorted(by_symbol.items()):
            try:
                await self._rules(base, items, now, report)
            except Exception as exc:
                report.errors.append(f"rules of {base}: {exc}")
                log.warning("alerts: rules of %s failed", base, exc_info=True)
        return report

    async def _market(self, base: str, now: datetime, report: AlertCycle) -> None:
        snap = await snapshot(
            self.market,  # type: ignore[arg-type]
            unified(base),
            now,
            timeframe=self.timeframe,
            liquidations=self.liquidations,
            whales=self.whales,
        )
        report.symbols.append(base)
        fired = market_alerts(snap)
        report.fired += fired
        if not fired:
            return
        async with self.sessions.begin() as session:
            for alert in fired:
                for recipient in await alerts_repo.recipients(session, alert.type, base):
                    if await route(session, alert, recipient, cooldown=self.cooldown, now=now):
                        report.queued += 1

    async def _rules(
        self, base: str, items: list[tuple[AlertRule, RuleSpec]], now: datetime, report: AlertCycle
    ) -> None:
        needs: set[str] = set().union(*(spec.needs() for _, spec in items))
        readings = await rule_readings(self.market, unified(base), needs, now)  # type: ignore[arg-type]
        fired = [(rule, spec, rule_alert(rule, spec, readings)) for rule, spec in items if spec.holds(readings)]
        if not fired:
            return
        report.fired += [alert for _, _, alert in fired]
        # One transaction for the symbol's rules: each rule's stamp and row still stand or fall together.
        async with self.sessions.begin() as session:
            for rule, spec, alert in fired:
                quiet = await alerts_repo.quiet_hours_of(session, rule.user_id)
                owner = f"user:{rule.user_id}"
                recipient = Recipient(owner, rule.platform, rule.recipient, rule.user_id, "info", quiet)
                cooldown = timedelta(minutes=spec.cooldown_minutes)
                if await route(session, alert, recipient, cooldown=cooldown, now=now):
                    report.queued += 1


def rule_alert(rule: AlertRule, spec: RuleSpec, readings: dict[str, float]) -> Alert:
    """The alert a user's rule sends when it holds: the rule in words and the readings that made it hold."""
    shown = []
    for key in sorted(spec.needs()):
        if key in readings:
            name, _, tf = key.partition(":")
            value = readings[key]
            label = {"poc": "POC", "vah": "VAH", "val": "VAL", "volume_ratio": "volume/avg"}.get(name, name)
            unit = "%" if name in {"funding", "oi_change", "change_24h"} else "x" if name == "volume_ratio" else ""
            shown.append(f"{tf + ' ' if tf else ''}{label} {value:,.6g}{unit}")
    return Alert(
        key=f"rule:{rule.id}",
        type="technical",
        severity="warning",
        asset=spec.symbol,
        title=f"Alert #{rule.id}: {spec.symbol}",
        message=f"{spec.describe()}.\nNow: {', '.join(shown)}.\nTurn it off with /alert off {rule.id}",
    )
