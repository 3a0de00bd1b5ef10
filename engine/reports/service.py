"""Reports built and stored: the previous stored report of the symbol feeds the changes section."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.reports.body import ReportBody
from engine.reports.build import BuiltReport, ReportBuilder, ReportError, body_of
from storage.models import Report
from storage.repositories import reports as reports_repo
from tools.agent_tools.base import ToolError, symbol_of
from tools.structure.render import fmt_price

# Outbox payload key of a picture (base64 PNG): bot.core.notify.outbound_of turns it back into bytes.
PHOTO_KEY = "photo_b64"
# A report's chart is named in the outbox by its report id (one copy in the reports table, not one per
# recipient); ReportChartSender puts the picture in just before the platform sender sends it.
CHART_REF_KEY = "report_chart"


@dataclass
class StoredReport:
    """A stored report row and what it was built from."""

    row: Report
    built: BuiltReport


def caption_of(body: ReportBody) -> str:
    """The short caption under a report's chart."""
    return (
        f"{body.symbol} {body.timeframe}: {body.bias}, confidence {100 * body.confidence:.0f}%, "
        f"price {fmt_price(body.price)}"
    )


def report_payloads(row: Report) -> list[dict[str, Any]]:
    """Outbox payloads of a stored report: the chart with its caption, then the text (two sends, two slots of
    the platform's rate limit)."""
    out: list[dict[str, Any]] = []
    body = body_of(row.content)
    if row.chart is not None:
        caption = caption_of(body) if body is not None else f"{row.symbol} {row.timeframe}"
        out.append({"text": caption, "buttons": [], CHART_REF_KEY: row.id})
    out.append({"text": row.text, "buttons": []})
    return out


class ReportService:
    """Builds a report, compares it with the previous stored one, stores it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], builder: ReportBuilder) -> None:
        self.sessions = sessions
        self.builder = builder

    async def previous(self, symbol: str, timeframe: str) -> ReportBody | None:
        """The body of the newest stored report of `symbol` on `timeframe`."""
        async with self.sessions() as session:
            row = await reports_repo.latest_report(session, symbol, timeframe)
        return body_of(row.content) if row is not None else None

    async def create(
        self, symbol: str, timeframe: str = "4h", kind: str = "on_demand", now: datetime | None = None
    ) -> StoredReport:
        """Build and store the report of `symbol` now (`now` stamps it; default the wall clock)."""
        try:
            unified = symbol_of(symbol)
        except ToolError as exc:
            raise ReportError(exc.user_message) from None
        previous = await self.previous(unified, timeframe)
        built = await self.builder.build(unified, timeframe, previous)
        body = built.body
        async with self.sessions.begin() as session:
            row = await reports_repo.add_report(
                session,
                symbol=body.symbol,
                timeframe=timeframe,
                kind=kind,
                bias=body.bias,
                confidence=body.confidence,
                content=body.model_dump(mode="json"),
                text=built.text,
                chart=built.chart,
                as_of=body.as_of,
                now=now,
            )
        return StoredReport(row, built)
