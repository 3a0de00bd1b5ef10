"""The elite scan on real candles: only qualifying setups, ranked, at most five, stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.reports.build import ReportBuilder
from engine.reports.jobs import ReportJobs, ScanSettings
from engine.reports.service import ReportService
from engine.scan.qualify import QualifyRules, Setup
from engine.scan.scan import render_scan, run_scan
from storage.repositories import reports as reports_repo
from tools.market.replay import ReplayMarketData

WATCH = ["BTC", "ETH", "SOL"]
# Moments of the real data with a qualifying setup (found by scanning every 9 days of 2025) and without one.
WITH_SETUP = {
    datetime(2025, 6, 17, tzinfo=UTC): ("ETH/USDT:USDT", "long"),
    datetime(2025, 10, 12, tzinfo=UTC): ("SOL/USDT:USDT", "short"),
}
WITHOUT = datetime(2025, 3, 3, tzinfo=UTC)


def satisfies(s: Setup, rules: QualifyRules) -> bool:
    d = 1 if s.side == "long" else -1
    return (
        s.confidence >= rules.min_confidence
        and all(v == d for v in s.alignment.values())
        and s.expected_move_pct >= rules.min_move_pct
        and s.mcf_total >= 7
        and d * (s.targets[0] - s.entry) > 0
        and d * (s.entry - s.stop) > 0
    )


@pytest.mark.parametrize("when", sorted(WITH_SETUP))
async def test_the_scan_picks_only_qualifying_setups(ohlcv_dir: Path, when: datetime) -> None:
    rules = QualifyRules()
    result = await run_scan(ReplayMarketData(ohlcv_dir, now=when), WATCH, rules=rules)
    assert len(result.setups) == 3 * 3 * 2  # symbols x timeframes x sides, every one judged
    assert result.failed == {}
    top = result.top
    assert top and (top[0].symbol, top[0].side) == WITH_SETUP[when]
    assert all(s.qualified and not s.reasons and satisfies(s, rules) for s in top)
    # Every setup left out says why, and none of them passes the rules.
    for s in result.setups:
        if not s.qualified:
            assert s.reasons and not (satisfies(s, rules) and s.qualified)
    # Ranked by MCF total, then alignment, confidence, R:R; one setup per symbol; at most five.
    assert [s.rank_key() for s in top] == sorted((s.rank_key() for s in top), reverse=True)
    assert len({s.symbol for s in top}) == len(top) <= 5


async def test_no_setup_qualifies_sometimes_and_the_reasons_are_given(ohlcv_dir: Path) -> None:
    result = await run_scan(ReplayMarketData(ohlcv_dir, now=WITHOUT), WATCH)
    assert result.top == []
    assert "No setup qualifies now" in render_scan(result)
    reasons = " ".join(r for s in result.setups for r in s.reasons)
    assert "timeframes not agreeing" in reasons or "confidence" in reasons


async def test_stricter_rules_drop_setups(ohlcv_dir: Path) -> None:
    when = min(WITH_SETUP)
    loose = await run_scan(ReplayMarketData(ohlcv_dir, now=when), WATCH)
    strict = await run_scan(ReplayMarketData(ohlcv_dir, now=when), WATCH, rules=QualifyRules(min_move_pct=50.0))
    assert loose.top and strict.top == []
    assert any("expected move to T1" in r for s in strict.setups for r in s.reasons)


async def test_a_symbol_the_provider_lacks_is_listed_not_fatal(ohlcv_dir: Path) -> None:
    result = await run_scan(ReplayMarketData(ohlcv_dir, now=WITHOUT), ["BTC", "DOGE"])
    assert set(result.failed) == {"DOGE"} and len(result.setups) == 6
    assert "Not scanned: DOGE" in render_scan(result)


async def test_the_scan_is_stored_with_its_top_setups(
    sessions: async_sessionmaker[AsyncSession], ohlcv_dir: Path
) -> None:
    when = max(WITH_SETUP)
    md = ReplayMarketData(ohlcv_dir, now=when)
    jobs = ReportJobs(
        sessions, ReportService(sessions, ReportBuilder(md, chart=False)), frozenset(), ScanSettings(watchlist=WATCH)
    )
    seen: list[str] = []
    row = await jobs.run_scan(when, progress=seen.append)
    assert seen == WATCH
    async with sessions() as session:
        stored = await reports_repo.latest_scan(session)
    assert stored is not None and stored.id == row.id
    assert stored.considered == 18 and stored.qualified >= 1 and stored.watchlist == WATCH
    assert stored.setups[0]["symbol"] == WITH_SETUP[when][0] and stored.setups[0]["qualified"] is True
    assert f"1. **{WITH_SETUP[when][0]} {WITH_SETUP[when][1]}**" in stored.text
