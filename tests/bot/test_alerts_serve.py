"""`bastion serve` schedules the alert job on the leader, and that job (as registered) queues alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bastion.serve import open_server
from bastion.settings import Settings
from bot.scheduler import _HANDLERS
from storage.models import Outbox
from storage.repositories import alerts as alerts_repo
from storage.repositories.users import get_or_create_user
from tests.bot.telegram_harness import telegram_services


async def test_the_leader_runs_the_alert_job(sqlite_url: str, tmp_path: Path, ohlcv_dir: Path) -> None:
    settings = Settings(
        database={"url": sqlite_url, "checkpoint_path": tmp_path / "cp.db"},
        exchange={"market_data": "replay", "data_dir": ohlcv_dir},
        scheduler={"enabled": True, "alerts_interval_s": 120, "alert_watchlist": ["BTC"]},
    )
    async with telegram_services(settings) as services, open_server(services) as server:
        # 2025-10-10 16:00: the BTC 15:00 candle traded 7.6x its average.
        services.market.set_now(datetime(2025, 10, 10, 16, tzinfo=UTC))  # type: ignore[attr-defined]
        async with services.sessions.begin() as s:
            user = await get_or_create_user(s, "telegram", "42", "u")
            await alerts_repo.set_subscription(s, topic="market", enabled=True, user_id=user.id)
        jobs = server._jobs({})
        assert jobs._intervals["alerts"] == 120
        await _HANDLERS[(jobs.key, "alerts")]()
        async with services.sessions() as s:
            rows = (await s.scalars(select(Outbox))).all()
        assert [r.recipient for r in rows] == ["42"] and "BTC volume 7.6x its average" in rows[0].payload["text"]
