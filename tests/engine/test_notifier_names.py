"""`engine watch` prints users as people name them (telegram:123), never their row id (issue 19 item 2)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts import Alert
from engine.monitor.notifier import PrintingNotifier
from storage.repositories.users import get_or_create_user


async def test_printed_alerts_name_the_user_by_platform_and_id(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        await get_or_create_user(s, "console", "local")  # another user first: the row id differs from the ref
        user = await get_or_create_user(s, "telegram", "123")
    assert user.id is not None and str(user.id) != "123"
    lines: list[str] = []
    alert = Alert(key="k", type="position", severity="warning", asset="ETH", title="Stop near", message="0.4 ATR")
    await PrintingNotifier(lines.append, sessions).send_alert(user.id, alert)
    assert lines == ["[WARNING] telegram:123: Stop near — 0.4 ATR"]
    await PrintingNotifier(lines.append).send_alert(user.id, alert)  # no database: the id, labelled as such
    assert lines[-1].startswith(f"[WARNING] user {user.id}:")
