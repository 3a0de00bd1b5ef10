"""Test doubles of the channel core: a virtual clock and a recording sender with scripted failures."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.delivery import RecipientGone, RetryAfter

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class VirtualClock:
    """Monotonic virtual seconds: sleeping moves time forward (never back), so rate limits are checked
    against the same clock the sends are stamped with, without waiting in real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now = max(self.now, self.now + max(0.0, seconds))
        await asyncio.sleep(0)

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.now)


class RecordingSender:
    """Records (virtual time, recipient, payload); `script` maps recipient → list of exceptions to raise first."""

    platform = "telegram"

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str, dict[str, Any]]] = []
        self.script: dict[str, list[Exception]] = defaultdict(list)
        self.attempts = 0

    def is_group(self, recipient: str) -> bool:
        return recipient.startswith("-")

    async def send(self, recipient: str, payload: dict[str, Any]) -> None:
        started = self.clock()  # the request leaves now; the platform counts it at this time
        self.attempts += 1
        await asyncio.sleep(0)
        if self.script[recipient]:
            raise self.script[recipient].pop(0)
        self.sent.append((started, recipient, payload))


__all__ = ["RecipientGone", "RecordingSender", "RetryAfter", "VirtualClock"]
