"""Read-only report API: `GET /v1/reports` lists stored reports, `GET /v1/reports/{id}` fetches one with its
chart (base64, and a URL to the PNG). Reports are market data for subscribers: nobody's personal data."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Report
from storage.repositories import reports as reports_repo
from tools.market.base import MarketDataError
from tools.market.symbols import normalise_symbol

PREFIX = "/v1/reports"
MAX_ID = 2**63 - 1


class ReportSummary(BaseModel):
    """A stored report in a listing."""

    id: int
    symbol: str
    timeframe: str
    kind: str
    bias: str | None
    confidence: float | None
    created_at: datetime
    as_of: datetime | None
    chart_url: str | None


class ReportDetail(ReportSummary):
    """One report: its Markdown, its sections as data and its chart."""

    text: str
    content: dict[str, Any]
    chart_png_base64: str | None


def _summary(row: Report) -> dict[str, Any]:
    assert row.id is not None
    return {
        "id": row.id,
        "symbol": row.symbol,
        "timeframe": row.timeframe,
        "kind": row.kind,
        "bias": row.bias,
        "confidence": row.confidence,
        "created_at": row.created_at,
        "as_of": row.as_of,
        "chart_url": f"{PREFIX}/{row.id}/chart.png" if row.chart else None,
    }


def reports_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    """The report routes over the app database."""
    router = APIRouter(prefix=PREFIX, tags=["reports"])

    async def _get(report_id: int) -> Report:
        async with sessions() as session:
            row = await reports_repo.get_report(session, report_id)
        if row is None:
            raise HTTPException(status_code=404, detail=f"No report {report_id}.")
        return row

    @router.get("", response_model=list[ReportSummary], responses={422: {"description": "Not a symbol or limit"}})
    async def list_reports(
        symbol: Annotated[str | None, Query(max_length=40, description="e.g. BTC or ETH/USDT")] = None,
        limit: Annotated[int, Query(ge=1, le=reports_repo.MAX_LIST)] = 10,
    ) -> list[dict[str, Any]]:
        """The newest stored reports, newest first (of one symbol when given)."""
        unified = None
        if symbol is not None:
            try:
                unified = normalise_symbol(symbol)
            except (ValueError, MarketDataError):
                detail = f"{symbol!r} is not a symbol (try BTC or ETH/USDT)."
                raise HTTPException(status_code=422, detail=detail) from None
        async with sessions() as session:
            rows = await reports_repo.list_reports(session, unified, limit)
        return [_summary(r) for r in rows]

    @router.get("/{report_id}", response_model=ReportDetail, responses={404: {"description": "No such report"}})
    async def get_report(report_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, Any]:
        """One stored report with its text, sections and chart."""
        row = await _get(report_id)
        chart = base64.b64encode(row.chart).decode("ascii") if row.chart else None
        return {**_summary(row), "text": row.text, "content": row.content, "chart_png_base64": chart}

    @router.get(
        "/{report_id}/chart.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such report, or it has no chart"}},
    )
    async def get_chart(report_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        """The report's chart as a PNG."""
        row = await _get(report_id)
        if not row.chart:
            raise HTTPException(status_code=404, detail=f"Report {report_id} has no chart.")
        return Response(content=row.chart, media_type="image/png")

    return router
