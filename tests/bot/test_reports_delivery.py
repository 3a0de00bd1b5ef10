"""1,000 subscribers of one slot: delivered through the outbox worker within Telegram's limits, chart then text
in every chat, the chart read from the reports table once."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.delivery import DeliveryWorker
from bot.core.notify import outbound_of
from engine.reports.build import ReportBuilder
from engine.reports.jobs import ReportJobs
from engine.reports.photos import ReportChartSender
from engine.reports.service import ReportService
from storage import migrate
from storage.db import create_engine, session_factory
from storage.models import Report
from storage.repositories import subscriptions as subs_repo
from tests.bot.fakes import RecordingSender, VirtualClock
from tests.bot.test_delivery import _check_limits
from tools.market.replay import ReplayMarketData

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # the bytes of "a chart": what matters is they arrive intact


class CountingSessions:
    """Counts how often the chart sender opens a session (one per chart, not one per recipient)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions, self.opened = sessions, 0

    def __call__(self) -> AsyncSession:
        self.opened += 1
        return self.sessions()


async def test_a_thousand_subscribers_within_the_platform_limits(sqlite_url: str, ohlcv_dir: Path) -> None:
    eng = create_engine(sqlite_url)
    await migrate.upgrade(eng)
    sessions = session_factory(eng)
    clock = VirtualClock()
    now = clock.wall() + timedelta(minutes=1)  # one minute after the 00:00 slot
    chats = [str(10_000 + i) for i in range(950)] + [str(-100_000 - i) for i in range(50)]
    async with sessions.begin() as session:
        for chat in chats:
            group = chat.startswith("-")
            values = {"symbols": ["BTC"], "every_hours": 4, "last_slot": now - timedelta(hours=4), "is_group": group}
            await subs_repo.upsert_subscription(session, "telegram", chat, "report", values)
    market = ReplayMarketData(ohlcv_dir, now=now.replace(year=2026, month=1))
    service = ReportService(sessions, ReportBuilder(market, chart=False))
    # The slot's report, stored with its chart (the tick reuses a report already made for the slot).
    stored = await service.create("BTC", "4h", kind="scheduled", now=now)
    async with sessions.begin() as session:
        row = await session.get(Report, stored.row.id)
        assert row is not None
        row.chart = PNG
    jobs = ReportJobs(sessions, service, frozenset({"telegram"}), clock=lambda: now)
    cpu, wall = time.process_time(), time.perf_counter()
    stats = await jobs.tick(now)
    tick_cpu, tick_wall = time.process_time() - cpu, time.perf_counter() - wall
    assert (stats.delivered, stats.queued, stats.reports_built) == (1000, 2000, 0)
    assert (await jobs.tick(now)).queued == 0

    recording = RecordingSender(clock)
    counting = CountingSessions(sessions)
    sender = ReportChartSender(recording, counting)  # type: ignore[arg-type]
    worker = DeliveryWorker(sessions, {"telegram": sender}, clock=clock, sleep=clock.sleep, wall=clock.wall)
    sent = await worker.drain(wait_for_retries=True)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert sent.sent == 2000 and sent.failed == 0
    _check_limits(recording.sent)  # 30/s overall, 1/s per chat, one per 3 s in a group
    by_chat: dict[str, list[dict]] = {}
    for _, chat, payload in recording.sent:
        by_chat.setdefault(chat, []).append(payload)
    assert sorted(by_chat) == sorted(chats)
    for payloads in by_chat.values():
        photo, text = (outbound_of(p) for p in payloads)
        assert photo.photo == PNG and photo.text.startswith("BTC/USDT:USDT 4h: ")
        assert text.photo is None and "**BTC/USDT:USDT 4h report**" in text.text
    assert counting.opened == 1
    # 2,000 messages at 30/s take at least 66.7 virtual seconds; the limiter adds no more than a few.
    span = max(t for t, _, _ in recording.sent) - min(t for t, _, _ in recording.sent)
    assert 66 <= span <= 75, span
    print(
        f"1000 subscribers: 2000 messages over {span:.1f} virtual s; tick CPU {tick_cpu:.2f} s (wall {tick_wall:.2f}), "
        f"tick + drain CPU {cpu:.2f} s (wall {wall:.2f})"
    )
    await eng.dispose()
