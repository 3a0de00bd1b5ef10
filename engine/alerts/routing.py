"""Who gets an alert and when: opt-in severity floors, quiet hours (UTC), critical alerts passing through."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from engine.alerts.models import SEVERITY_RANK, Alert
from storage.repositories import alerts as alerts_repo
from storage.repositories.alerts import Recipient


def in_quiet_hours(hours: tuple[int, int] | None, now: datetime) -> bool:
    """True when `now` (UTC) falls in [start, end) hours; a window may wrap midnight (22-7)."""
    if hours is None:
        return False
    start, end = hours
    if start == end:
        return False
    h = now.hour
    return start <= h < end if start < end else h >= start or h < end


def quiet_end(hours: tuple[int, int], now: datetime) -> datetime:
    """The first moment after `now` outside the quiet hours (the top of the end hour)."""
    end = now.replace(hour=hours[1], minute=0, second=0, microsecond=0)
    return end if end > now else end + timedelta(days=1)


def delivery_time(recipient: Recipient, alert: Alert, now: datetime) -> datetime | None:
    """When to deliver: now, the end of quiet hours (deferred), or None when below the recipient's severity floor.

    Critical alerts ignore quiet hours: a breached stop is worth waking up for.
    """
    if SEVERITY_RANK[alert.severity] < SEVERITY_RANK.get(recipient.min_severity, 0):
        return None
    if alert.severity != "critical" and recipient.quiet_hours and in_quiet_hours(recipient.quiet_hours, now):
        return quiet_end(recipient.quiet_hours, now)
    return now


def payload(text: str, buttons: list[tuple[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    """An outbox payload (the shape the delivery worker sends: text and one row of buttons)."""
    return {"text": text, "buttons": [{"label": label, "data": data} for label, data in buttons or []], **extra}


async def route(
    session: AsyncSession,
    alert: Alert,
    recipient: Recipient,
    *,
    cooldown: timedelta,
    now: datetime,
    body: dict[str, Any] | None = None,
) -> bool:
    """Queue `alert` for `recipient` once per cooldown of (condition, recipient); True when queued.

    The cooldown stamp and the outbox row are written in the caller's transaction, so a crash leaves neither
    or both, and a restart or a second process within the cooldown queues nothing.
    """
    when = delivery_time(recipient, alert, now)
    if when is None:
        return False
    key = f"{alert.key}:{recipient.ref}"
    if not await alerts_repo.claim_firing(session, key, cooldown, now):
        return False
    content = body or payload(alert.text)
    content.setdefault("alert", {"key": alert.key, "type": alert.type, "severity": alert.severity})
    return await alerts_repo.enqueue_alert(
        session, recipient, content, f"alert:{key}:{now:%Y%m%d%H%M%S}", deliver_at=when, now=now
    )
