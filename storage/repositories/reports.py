"""Stored reports and scan runs: add, latest per symbol, list, fetch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from storage.models import Report, ScanRun
from storage.types import utcnow

MAX_LIST = 100


async def add_report(
    session: AsyncSession,
    *,
    symbol: str,
    timeframe: str,
    kind: str,
    bias: str | None,
    confidence: float | None,
    content: dict[str, Any],
    text: str,
    chart: bytes | None,
    as_of: datetime | None,
    now: datetime | None = None,
) -> Report:
    """Store a report; returns the row with its id."""
    row = Report(
        symbol=symbol,
        timeframe=timeframe,
        kind=kind,
        bias=bias,
        confidence=confidence,
        content=content,
        text=text,
        chart=chart,
        as_of=as_of,
        created_at=now or utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def latest_report(session: AsyncSession, symbol: str, timeframe: str) -> Report | None:
    """The newest stored report of a symbol and timeframe."""
    stmt = (
        select(Report)
        .where(Report.symbol == symbol, Report.timeframe == timeframe)
        .order_by(col(Report.created_at).desc(), col(Report.id).desc())
        .limit(1)
    )
    return (await session.scalars(stmt)).first()


async def list_reports(session: AsyncSession, symbol: str | None = None, limit: int = 10) -> list[Report]:
    """The newest reports (of `symbol` when given), newest first; at most `MAX_LIST`."""
    stmt = select(Report).order_by(col(Report.created_at).desc(), col(Report.id).desc())
    if symbol is not None:
        stmt = stmt.where(Report.symbol == symbol)
    stmt = stmt.limit(max(1, min(limit, MAX_LIST)))
    return list((await session.scalars(stmt)).all())


async def get_report(session: AsyncSession, report_id: int) -> Report | None:
    """One report by id."""
    return await session.get(Report, report_id)


async def add_scan(
    session: AsyncSession,
    *,
    watchlist: list[str],
    timeframes: list[str],
    considered: int,
    qualified: int,
    setups: list[dict[str, Any]],
    text: str,
    now: datetime | None = None,
) -> ScanRun:
    """Store a scan run."""
    row = ScanRun(
        watchlist=watchlist,
        timeframes=timeframes,
        considered=considered,
        qualified=qualified,
        setups=setups,
        text=text,
        created_at=now or utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def latest_scan(session: AsyncSession, since: datetime | None = None) -> ScanRun | None:
    """The newest scan run (made at or after `since` when given)."""
    stmt = select(ScanRun).order_by(col(ScanRun.created_at).desc(), col(ScanRun.id).desc()).limit(1)
    if since is not None:
        stmt = stmt.where(ScanRun.created_at >= since)
    return (await session.scalars(stmt)).first()
