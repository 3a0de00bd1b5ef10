"""Scheduled delivery: each subscription's latest due slot goes to the outbox once, then the daily scan.

A tick looks at every enabled subscription: the latest slot of its schedule that is due (<= now) and later than
the last one it received. In quiet hours nothing is sent and the slot waits; after downtime only the latest
missed slot goes out (one catch-up, not a burst). The outbox rows of a slot and the subscription's new
`last_slot` are written in one transaction, and each row's dedup key names (subscription, slot, symbol, part),
so a crash, a restart or two leaders at once never send a slot twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.reports.build import ReportError
from engine.reports.schedule import Schedule, ScheduleError
from engine.reports.service import ReportService, report_payloads
from engine.scan.qualify import QualifyRules
from engine.scan.scan import DEFAULT_WATCHLIST, render_scan, run_scan
from storage.models import Report, ReportSubscription, ScanRun
from storage.repositories import reports as reports_repo
from storage.repositories import subscriptions as subs_repo
from storage.types import utcnow
from tools.agent_tools.base import ToolError, symbol_of
from tools.market.base import MarketDataError
from tools.structure.mtf import DEFAULT_TIMEFRAMES

log = logging.getLogger(__name__)
SCAN_FRESH = timedelta(hours=1)
# Subscriptions whose rows are written per transaction and statement (not one commit per chat).
QUEUE_BATCH = 200  # a scan subscriber's slot reuses a scan this recent instead of running one


def schedule_of(sub: ReportSubscription) -> Schedule:
    """The subscription's schedule."""
    quiet = (sub.quiet_start, sub.quiet_end) if sub.quiet_start is not None and sub.quiet_end is not None else None
    return Schedule(every_hours=sub.every_hours, cron=sub.cron, tz=sub.timezone, quiet=quiet)


def slot_key(slot: datetime) -> str:
    """A slot in dedup keys: UTC minute precision."""
    return f"{slot:%Y%m%dT%H%MZ}"


@dataclass
class TickStats:
    """What one tick did."""

    delivered: int = 0  # subscriptions whose slot was queued
    queued: int = 0  # outbox rows queued
    deferred: int = 0  # due but in quiet hours
    failed: int = 0  # due but a report could not be built (retried next tick)
    reports_built: int = 0


@dataclass
class ScanSettings:
    """What the scan looks at."""

    watchlist: Sequence[str] = DEFAULT_WATCHLIST
    timeframes: Sequence[str] = DEFAULT_TIMEFRAMES
    rules: QualifyRules = field(default_factory=QualifyRules)


class ReportJobs:
    """The bodies of the scheduled report and scan jobs (the scheduler's leader calls them)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        service: ReportService,
        platforms: frozenset[str],
        scan: ScanSettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.service = service
        self.platforms = platforms
        self.scan_settings = scan or ScanSettings()
        self.clock = clock

    async def tick(self, now: datetime | None = None) -> TickStats:
        """Queue every subscription's due slot."""
        now = now or self.clock()
        stats = TickStats()
        async with self.sessions() as session:
            subs = await subs_repo.enabled_subscriptions(session, sorted(self.platforms))
        reports: dict[tuple[str, str], Report] = {}
        scans: dict[datetime, ScanRun] = {}
        batch: list[tuple[ReportSubscription, datetime, list[tuple[str, dict[str, Any]]]]] = []
        for sub in subs:
            try:
                schedule = schedule_of(sub)
            except ScheduleError:
                log.warning("subscription %s has an unusable schedule; skipped", sub.id)
                continue
            slot = schedule.latest_slot(now, after=sub.last_slot or sub.created_at)
            if slot is None:
                continue
            if schedule.quiet_at(now):
                stats.deferred += 1
                continue
            try:
                if sub.kind == "scan":
                    payloads = await self._scan_payloads(slot, now, scans)
                else:
                    payloads = await self._report_payloads(sub, slot, now, reports, stats)
            except (ReportError, MarketDataError, ToolError) as exc:
                stats.failed += 1
                log.warning("subscription %s slot %s not built: %s", sub.id, slot_key(slot), exc)
                continue
            batch.append((sub, slot, payloads))
            if len(batch) >= QUEUE_BATCH:
                stats.queued += await self._queue(batch, now)
                stats.delivered, batch = stats.delivered + len(batch), []
        if batch:
            stats.queued += await self._queue(batch, now)
            stats.delivered += len(batch)
        return stats

    async def _report(
        self, symbol: str, timeframe: str, slot: datetime, now: datetime, cache: dict[tuple[str, str], Report],
        stats: TickStats,
    ) -> Report:  # fmt: skip
        key = (symbol, timeframe)
        if key in cache:
            return cache[key]
        async with self.sessions() as session:
            latest = await reports_repo.latest_report(session, symbol_of(symbol), timeframe)
        # One made for this slot already (by an earlier tick that crashed before queueing, or another subscriber).
        if latest is not None and latest.kind == "scheduled" and latest.created_at >= slot:
            cache[key] = latest
            return latest
        stored = await self.service.create(symbol, timeframe, kind="scheduled", now=now)
        stats.reports_built += 1
        cache[key] = stored.row
        return stored.row

    async def _report_payloads(
        self, sub: ReportSubscription, slot: datetime, now: datetime, cache: dict[tuple[str, str], Report],
        stats: TickStats,
    ) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
        out: list[tuple[str, dict[str, Any]]] = []
        for symbol in sub.symbols:
            row = await self._report(symbol, sub.timeframe, slot, now, cache, stats)
            for i, payload in enumerate(report_payloads(row)):
                out.append((f"{symbol}:{i}", payload))
        return out

    async def _scan_payloads(
        self, slot: datetime, now: datetime, cache: dict[datetime, ScanRun]
    ) -> list[tuple[str, dict[str, Any]]]:
        if slot not in cache:
            async with self.sessions() as session:
                fresh = await reports_repo.latest_scan(session, since=slot - SCAN_FRESH)
            cache[slot] = fresh if fresh is not None else await self.run_scan(now)
        return [("scan", {"text": cache[slot].text, "buttons": []})]

    async def _queue(
        self, batch: list[tuple[ReportSubscription, datetime, list[tuple[str, dict[str, Any]]]]], now: datetime
    ) -> int:
        """The rows of several subscriptions' slots and their new `last_slot`s, in one transaction."""
        rows: list[dict[str, Any]] = []
        by_slot: dict[datetime, list[int]] = {}
        for sub, slot, payloads in batch:
            assert sub.id is not None
            by_slot.setdefault(slot, []).append(sub.id)
            for part, payload in payloads:
                key = f"{sub.kind}:{sub.id}:{slot_key(slot)}:{part}"
                rows.append({"platform": sub.platform, "recipient": sub.chat_ref, "payload": payload, "dedup_key": key})
        async with self.sessions.begin() as session:
            queued = await subs_repo.queue_rows(session, rows, now)
            for slot, ids in by_slot.items():
                await subs_repo.advance_slots(session, ids, slot)
        return queued

    async def run_scan(self, now: datetime | None = None, progress: Callable[[str], None] | None = None) -> ScanRun:
        """Run the elite scan over the watchlist and store it (the daily job, /scan and scan subscribers)."""
        s = self.scan_settings
        result = await run_scan(
            self.service.builder.market,
            s.watchlist,
            s.timeframes,
            s.rules,
            cache=self.service.builder.cache,
            whales=self.service.builder.whales,
            progress=progress,
        )
        when = f"{(now or self.clock()):%Y-%m-%d %H:%M} UTC"
        async with self.sessions.begin() as session:
            return await reports_repo.add_scan(
                session,
                watchlist=list(s.watchlist),
                timeframes=list(s.timeframes),
                considered=len(result.setups),
                qualified=len(result.qualified),
                setups=[x.model_dump(mode="json") for x in result.top],
                text=render_scan(result, when),
                now=now,
            )
