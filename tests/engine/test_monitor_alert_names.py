"""A cycle's report names a user whose alert failed as people do (telegram:99), not by row id (issue 19 item 4)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts import Alert
from storage.models import AccountMode
from tests.engine.test_monitor import _setup


async def test_a_failed_alert_is_reported_with_the_platform_user(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    market, _paper, monitor, notifier, _row = await _setup(sessions, ohlcv_dir, AccountMode.ADVISE)

    async def unreachable(user_id: int, alert: Alert) -> None:
        raise ConnectionError("chat unreachable")

    notifier.send_alert = unreachable  # type: ignore[method-assign]
    now = market.now_ms or 0
    errors: list[str] = []
    for _ in range(4):  # the stop is breached within three bars: a critical alert is sent, and fails
        now += 3_600_000
        market.set_now(now)
        errors += (await monitor.run_cycle()).errors
    failures = [e for e in errors if e.startswith("alert to")]
    assert failures and all(e.startswith("alert to telegram:99") for e in failures), errors
