"""Puts a stored report's chart into an outbox payload just before a platform sender sends it."""

from __future__ import annotations

import asyncio
import base64
from collections import OrderedDict
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.reports.service import CHART_REF_KEY, PHOTO_KEY
from storage.models import Report

KEEP_CHARTS = 16  # a slot sends one chart per symbol to every subscriber: the few of this slot stay loaded


class PayloadSender(Protocol):
    """The outbox worker's Sender shape (bot.core.delivery.Sender)."""

    platform: str

    def is_group(self, recipient: str) -> bool: ...

    async def send(self, recipient: str, payload: dict[str, Any]) -> None: ...


class ReportChartSender:
    """Wraps a platform sender: a payload naming a report's chart gets the picture from the reports table."""

    def __init__(self, inner: PayloadSender, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.inner = inner
        self.platform = inner.platform
        self.sessions = sessions
        self._charts: OrderedDict[int, str | None] = OrderedDict()
        self._loading = asyncio.Lock()  # the sends of one slot start together: one of them reads the chart

    def is_group(self, recipient: str) -> bool:
        """As the wrapped sender says."""
        return self.inner.is_group(recipient)

    async def _chart(self, report_id: int) -> str | None:
        if report_id in self._charts:
            self._charts.move_to_end(report_id)
            return self._charts[report_id]
        async with self._loading:
            if report_id in self._charts:
                return self._charts[report_id]
            return await self._load(report_id)

    async def _load(self, report_id: int) -> str | None:
        async with self.sessions() as session:
            row = await session.get(Report, report_id)
        encoded = base64.b64encode(row.chart).decode("ascii") if row is not None and row.chart else None
        self._charts[report_id] = encoded
        while len(self._charts) > KEEP_CHARTS:
            self._charts.popitem(last=False)
        return encoded

    async def send(self, recipient: str, payload: dict[str, Any]) -> None:
        """Send, with the chart put in when the payload names one (a deleted report goes out as its caption)."""
        ref = payload.get(CHART_REF_KEY)
        if isinstance(ref, int):
            encoded = await self._chart(ref)
            payload = {k: v for k, v in payload.items() if k != CHART_REF_KEY}
            if encoded is not None:
                payload[PHOTO_KEY] = encoded
        await self.inner.send(recipient, payload)
