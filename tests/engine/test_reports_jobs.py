"""Scheduled delivery: each slot exactly once across restarts and crashes, one catch-up after downtime, the
subscriber's local hour, quiet hours, two leaders at once, and the scan for scan subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.reports.build import ReportBuilder
from engine.reports.jobs import ReportJobs, ScanSettings
from engine.reports.service import ReportService
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import Outbox, Report, ReportSubscription, ScanRun
from storage.repositories import subscriptions as subs_repo
from tools.market.replay import ReplayMarketData

PLATFORMS = frozenset({"telegram"})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Deployment:
    """One process's report jobs over a replay market whose clock follows the tick's `now`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], data: Path) -> None:
        self.market = ReplayMarketData(data, now=at("2026-01-15T00:00"))
        service = ReportService(sessions, ReportBuilder(self.market, chart=False))
        self.jobs = ReportJobs(sessions, service, PLATFORMS, ScanSettings(watchlist=["BTC", "ETH"]))

    async def tick(self, when: str) -> Any:
        now = at(when)
        self.market.set_now(now)
        return await self.jobs.tick(now)


@pytest.fixture
async def lite(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """SQLite only, for the schedule logic (the backends' differences are covered by the tests on both)."""
    eng = create_engine(sqlite_url)
    await migrate.upgrade(eng)
    yield session_factory(eng)
    await eng.dispose()


async def subscribe(
    sessions: async_sessionmaker[AsyncSession], chat: str, created: str, kind: str = "report", **values: Any
) -> int:
    values = {"symbols": ["BTC"], "every_hours": 4, "timezone": "UTC", **values}
    async with sessions.begin() as session:
        sub = await subs_repo.upsert_subscription(session, "telegram", chat, kind, values)
        sub.created_at = at(created)
        await session.flush()
        assert sub.id is not None
        return sub.id


async def rows(sessions: async_sessionmaker[AsyncSession], chat: str | None = None) -> list[Outbox]:
    async with sessions() as session:
        stmt = select(Outbox).order_by(Outbox.id)  # type: ignore[arg-type]
        if chat is not None:
            stmt = stmt.where(Outbox.recipient == chat)
        return list((await session.scalars(stmt)).all())


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_each_slot_once_across_restarts(sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path) -> None:
    await subscribe(sessions, "100", "2026-01-15T09:10")
    first = Deployment(sessions, ohlcv_dir)
    assert (await first.tick("2026-01-15T09:30")).queued == 0  # subscribed after the 08:00 slot
    stats = await first.tick("2026-01-15T12:00")
    assert (stats.delivered, stats.queued, stats.reports_built) == (1, 1, 1)
    assert (await first.tick("2026-01-15T12:01")).queued == 0
    restarted = Deployment(sessions, ohlcv_dir)  # a new process on the same database
    assert (await restarted.tick("2026-01-15T12:02")).queued == 0
    assert (await restarted.tick("2026-01-15T16:00")).queued == 1
    keys = [r.dedup_key for r in await rows(sessions)]
    assert keys == [
        keys[0].split(":")[0] + f":{keys[0].split(':')[1]}:20260115T1200Z:BTC:0",
        keys[0].split(":")[0] + f":{keys[0].split(':')[1]}:20260115T1600Z:BTC:0",
    ]
    texts = [r.payload["text"] for r in await rows(sessions)]
    assert all("**BTC/USDT:USDT 4h report**" in t for t in texts)
    assert "First report" in texts[0] and "Since the previous report**\n- Price" in texts[1]


async def test_downtime_catches_up_only_the_last_missed_slot_once(
    lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    await subscribe(lite, "100", "2026-01-15T07:00", last_slot=at("2026-01-15T08:00"))
    d = Deployment(lite, ohlcv_dir)
    # Down from 08:05 to 20:30: the 12:00 and 16:00 slots were missed; only 20:00 goes out, once.
    assert (await d.tick("2026-01-15T20:30")).queued == 1
    assert (await d.tick("2026-01-15T20:31")).queued == 0
    assert [r.dedup_key.split(":")[2] for r in await rows(lite)] == ["20260115T2000Z"]  # type: ignore[union-attr]


async def test_a_crash_before_queueing_neither_loses_nor_repeats_the_slot(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await subscribe(sessions, "100", "2026-01-15T09:00", symbols=["BTC", "ETH"])
    d = Deployment(sessions, ohlcv_dir)
    real = subs_repo.advance_slots
    calls = 0

    async def crash(session: AsyncSession, sub_ids: list[int], slot: datetime) -> int:
        nonlocal calls
        calls += 1
        raise ConnectionError("database went away mid-transaction")

    monkeypatch.setattr(subs_repo, "advance_slots", crash)
    with pytest.raises(ConnectionError):
        await d.tick("2026-01-15T12:00")
    assert calls == 1
    assert await rows(sessions) == []  # the rows and the slot are one transaction: none of it stayed
    assert await count(sessions, Report) == 2  # the reports themselves were stored
    monkeypatch.setattr(subs_repo, "advance_slots", real)
    restarted = Deployment(sessions, ohlcv_dir)
    stats = await restarted.tick("2026-01-15T12:03")
    assert (stats.queued, stats.reports_built) == (2, 0)  # the slot's stored reports are reused, not rebuilt
    assert (await restarted.tick("2026-01-15T12:04")).queued == 0
    assert sorted(r.dedup_key.rsplit(":", 2)[1] for r in await rows(sessions)) == ["BTC", "ETH"]  # type: ignore[union-attr]


async def test_a_subscriber_in_utc_plus_9_gets_it_at_their_local_hour(
    lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    await subscribe(lite, "900", "2026-01-15T09:00", every_hours=None, cron="0 8 * * *", timezone="UTC+9")
    await subscribe(lite, "000", "2026-01-15T09:00", every_hours=None, cron="0 8 * * *", timezone="UTC")
    d = Deployment(lite, ohlcv_dir)
    for hour in range(10, 23):
        await d.tick(f"2026-01-15T{hour:02d}:00")
    assert await rows(lite, "900") == []  # 08:00 in Tokyo-time is 23:00 UTC
    await d.tick("2026-01-15T23:00")
    sent = await rows(lite, "900")
    assert [r.dedup_key.split(":")[2] for r in sent] == ["20260115T2300Z"]  # type: ignore[union-attr]
    assert await rows(lite, "000") == []  # the UTC subscriber's 08:00 comes the next morning
    await d.tick("2026-01-16T08:00")
    assert len(await rows(lite, "000")) == 1 and len(await rows(lite, "900")) == 1


async def test_quiet_hours_defer_the_slot_until_they_end(
    lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    await subscribe(lite, "100", "2026-01-15T21:00", quiet_start=22, quiet_end=7)
    d = Deployment(lite, ohlcv_dir)
    s1 = await d.tick("2026-01-16T00:01")
    s2 = await d.tick("2026-01-16T04:01")
    assert (s1.deferred, s1.queued, s2.deferred, s2.queued) == (1, 0, 1, 0)
    s3 = await d.tick("2026-01-16T07:00")
    assert s3.queued == 1 and [r.dedup_key.split(":")[2] for r in await rows(lite)] == ["20260116T0400Z"]  # type: ignore[union-attr]
    assert (await d.tick("2026-01-16T07:05")).queued == 0
    assert (await d.tick("2026-01-16T08:00")).queued == 1  # the 08:00 slot is outside the quiet hours


async def test_two_leaders_ticking_at_once_queue_each_slot_once(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    for chat in ("1", "2", "3"):
        await subscribe(sessions, chat, "2026-01-15T09:00")
    a, b = Deployment(sessions, ohlcv_dir), Deployment(sessions, ohlcv_dir)
    await asyncio.gather(a.tick("2026-01-15T12:00"), b.tick("2026-01-15T12:00"))
    await asyncio.gather(a.tick("2026-01-15T12:01"), b.tick("2026-01-15T12:01"))
    sent = await rows(sessions)
    assert sorted(r.recipient for r in sent) == ["1", "2", "3"]
    async with sessions() as session:
        slots = (await session.scalars(select(ReportSubscription.last_slot))).all()
    assert set(slots) == {at("2026-01-15T12:00")}


async def test_scan_subscribers_get_the_stored_scan(lite: async_sessionmaker[AsyncSession], ohlcv_dir: Path) -> None:
    await subscribe(lite, "-100", "2026-01-14T01:00", kind="scan", symbols=[], every_hours=24)
    await subscribe(lite, "-200", "2026-01-14T01:00", kind="scan", symbols=[], every_hours=24)
    d = Deployment(lite, ohlcv_dir)
    stats = await d.tick("2026-01-15T00:10")
    assert stats.queued == 2
    assert await count(lite, ScanRun) == 1  # one scan for both subscribers
    texts = {r.payload["text"] for r in await rows(lite)}
    assert len(texts) == 1 and next(iter(texts)).startswith("**Elite scan**")
    assert (await d.tick("2026-01-15T00:20")).queued == 0
