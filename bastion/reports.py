"""Wiring of reports, subscriptions and the scan from the settings (used by `bastion serve` and the CLI)."""

from __future__ import annotations

from agents.grounding import check_answer
from bastion.app import Services
from engine.reports.build import ReportBuilder
from engine.reports.jobs import ReportJobs, ScanSettings
from engine.reports.narrative import ModelNarrator
from engine.reports.service import ReportService
from engine.scan.qualify import QualifyRules
from inference.client import ModelClient


def build_report_jobs(services: Services, platforms: frozenset[str], *, chart: bool = True) -> ReportJobs:
    """The report jobs over the services: a narrator only when a model endpoint is configured."""
    s = services.settings
    narrator = ModelNarrator(ModelClient(s.model)) if s.model.base_url else None
    # Whale flows come from the premium on-chain provider when its key is set; the report says "not available" else.
    builder = ReportBuilder(
        services.market,
        whales=services.premium,
        narrator=narrator,
        grounding=check_answer,
        chart=chart,
        renderer=services.chart_renderer,
    )
    r = s.reports
    scan = ScanSettings(
        watchlist=list(r.watchlist),
        rules=QualifyRules(min_confidence=r.scan_min_confidence, min_move_pct=r.scan_min_move_pct),
    )
    return ReportJobs(services.sessions, ReportService(services.sessions, builder), platforms, scan)
