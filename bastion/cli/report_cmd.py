"""`bastion report BTC [--tf 4h] [--out report.md] [--chart c.png]` and `bastion scan` (with a progress bar)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bastion.app import Services
from bastion.cli.chat_cmd import ensure_schema
from bastion.cli.common import fail, run_with_services
from bastion.cli.output import JSON_OPTION, print_json, print_markdown
from engine.reports.build import REPORT_TIMEFRAMES, ReportError
from storage.models import ScanRun

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `report` and `scan`."""

    @app.command("report")
    def report(
        symbol: str = typer.Argument(..., help="BTC, ETH, SOL, ... (any symbol the market data has)"),
        timeframe: str = typer.Option("4h", "--tf", "--timeframe", help="15m | 1h | 4h | 1d"),
        out: Path | None = typer.Option(None, "--out", help="Write the Markdown report to this file."),
        chart: Path | None = typer.Option(None, "--chart", help="Write the chart PNG to this file."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Build a market-structure report now, store it, print it (and write it and its chart)."""
        if timeframe not in REPORT_TIMEFRAMES:
            raise fail(f"timeframe must be one of {', '.join(REPORT_TIMEFRAMES)}, not {timeframe!r}", 2)
        from bastion.reports import build_report_jobs

        async def go(services: Services) -> tuple[str, bytes | None, int | None, dict[str, Any]]:
            await ensure_schema(services)  # embedded SQLite works with zero setup, as `bastion chat` does
            jobs = build_report_jobs(services, frozenset(), chart=chart is not None)
            try:
                stored = await jobs.service.create(symbol, timeframe, kind="cli")
            except ReportError as exc:
                raise fail(exc.user_message) from None
            body = stored.built.body.model_dump(mode="json")
            return stored.built.text, stored.built.chart, stored.row.id, body

        text, png, report_id, body = run_with_services(go)
        if as_json:
            print_json(_out, {"report_id": report_id, **body, "text": text})
        else:
            print_markdown(_out, text)
        if out is not None:
            out.write_text(text + "\n", encoding="utf-8")
        if chart is not None and png is not None:
            chart.write_bytes(png)
        written = [str(p) for p in (out, chart) if p is not None]
        _err.print(f"Stored as report #{report_id}." + (f" Wrote: {', '.join(written)}" if written else ""))

    @app.command("scan")
    def scan(
        watchlist: str | None = typer.Option(None, "--watchlist", help="Comma-separated symbols (default: settings)"),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Run the elite scan over the watchlist, store it and print the top setups."""
        from bastion.reports import build_report_jobs

        async def go(services: Services) -> ScanRun:
            await ensure_schema(services)
            jobs = build_report_jobs(services, frozenset(), chart=False)
            if watchlist:
                jobs.scan_settings.watchlist = [s.strip() for s in watchlist.split(",") if s.strip()]
            symbols = list(jobs.scan_settings.watchlist)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=_err, transient=False) as bar:
                task = bar.add_task("scanning", total=len(symbols))
                row = await jobs.run_scan(progress=lambda _symbol: bar.advance(task))
            return row

        row = run_with_services(go)
        if as_json:
            print_json(_out, {"scan_id": row.id, **row.model_dump(mode="json", exclude={"id"})})
        else:
            print_markdown(_out, row.text)
        _err.print(f"Stored as scan #{row.id}.")
