"""`bastion analyze SYMBOL --tf 4h [--chart out.png] [--data-dir DIR]`: market structure of one symbol."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console

from bastion.cli.output import JSON_OPTION, print_json
from tools.agent_tools.setup_score import ALIGNMENT_TIMEFRAMES, alignment_json, alignment_line, mcf_json, mcf_line
from tools.market.base import TIMEFRAME_SECONDS, MarketData, MarketDataError
from tools.structure.analysis import analyze_frame
from tools.structure.config import StructureConfig
from tools.structure.mtf import closed_candles
from tools.structure.render import fmt_price
from tools.structure.report import StructureReport
from tools.structure.targets import Side, TradePlan, plan_from_report

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _provider(data_dir: Path | None) -> MarketData:
    """Replay over candle files when a folder is given, else the offline simulated market."""
    if data_dir is not None:
        from tools.market.replay import ReplayMarketData

        return ReplayMarketData(data_dir)
    from tools.market.simulated import SimulatedMarketData

    return SimulatedMarketData(seed=0)


async def _fetch(md: MarketData, symbol: str, tf: str, bars: int) -> tuple[pd.DataFrame, float | None]:
    """Closed candles and the live price (None when the provider has no ticker for it)."""
    df = closed_candles(await md.ohlcv(symbol, tf, bars + 1), tf).iloc[-bars:]
    try:
        last: float | None = float((await md.ticker(symbol)).last)
    except MarketDataError:
        last = None  # plans then start from the last close, and say so
    return df, last


async def _context(md: MarketData, symbol: str, tf: str, bars: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The market readings the MCF score uses and each alignment timeframe's closed candles (others than `tf`)."""
    from tools.agent_tools.market_tools import market_readings

    try:
        readings: dict[str, Any] | None = await market_readings(md, symbol)
    except MarketDataError:
        readings = None  # the score then lists what it lacked
    frames: dict[str, Any] = {}
    for frame_tf in ALIGNMENT_TIMEFRAMES:
        if frame_tf != tf:
            try:
                frames[frame_tf] = closed_candles(await md.ohlcv(symbol, frame_tf, bars + 1), frame_tf).iloc[-bars:]
            except MarketDataError:
                frames[frame_tf] = None
    return readings, frames


async def _fetch_all(md: MarketData, symbol: str, tf: str, bars: int) -> tuple[Any, ...]:
    try:
        df, last = await _fetch(md, symbol, tf, bars)
        readings, frames = await _context(md, symbol, tf, bars)
        return df, last, readings, frames
    finally:
        await md.close()


def _plan_line(plan: TradePlan) -> str:
    targets = ", ".join(f"{t.name} {fmt_price(t.price)} ({t.take_pct:.0f}%, {t.rr:.1f}R)" for t in plan.targets)
    line = (
        f"{plan.side:5s} entry {fmt_price(plan.entry)}  stop {fmt_price(plan.stop)} ({plan.stop_source}, "
        f"{plan.risk_atr:.1f} ATR)  {targets}"
    )
    return line + (f"\n         REJECTED: {plan.reason}." if plan.rejected else "")


def run_analysis(
    symbol: str, tf: str, data_dir: Path | None, bars: int = 1000
) -> tuple[pd.DataFrame, StructureReport, bool, float | None, dict[str, Any]]:
    """Fetch and analyse: (frame, report, simulated, live price, setup: both sides' MCF score and the timeframes)."""
    md = _provider(data_dir)
    df, last, readings, frames = asyncio.run(_fetch_all(md, symbol, tf, bars))
    if len(df) == 0:
        raise MarketDataError(f"No closed {tf} candles for {symbol}.")
    unified = md.resolve(symbol) if hasattr(md, "resolve") else symbol
    config = StructureConfig(window=bars)
    report = analyze_frame(df, unified, tf, config=config)
    reports = {tf: report}
    missing = []
    for frame_tf, frame in frames.items():
        if frame is None or len(frame) == 0:
            missing.append(frame_tf)
        else:
            reports[frame_tf] = analyze_frame(frame, unified, frame_tf, config=config)
    ordered = {t: reports[t] for t in ALIGNMENT_TIMEFRAMES if t in reports}
    setup = {"mcf": mcf_json(report, readings, df), "alignment": alignment_json(unified, ordered, missing)}
    return df, report, bool(md.simulated), last, setup


def register(app: typer.Typer) -> None:
    """Add the `analyze` command."""

    @app.command("analyze")
    def analyze(
        symbol: str = typer.Argument(..., help="Symbol in any common spelling: BTC, btcusdt, BTC/USDT."),
        tf: str = typer.Option("4h", "--tf", help="Timeframe: 15m, 1h, 4h or 1d."),
        chart: Path | None = typer.Option(None, "--chart", help="Write a PNG chart to this file."),
        data_dir: Path | None = typer.Option(
            None, "--data-dir", help="Replay candle files from this folder (default: the simulated market)."
        ),
        bars: int = typer.Option(1000, "--bars", min=100, max=5000, help="Visible range in bars."),
        compact: bool = typer.Option(False, "--compact", help="Print the compact (model prompt) rendering."),
        as_json: bool = JSON_OPTION,
        max_stop_atr: float = typer.Option(
            3.0, "--max-stop-atr", min=0.5, max=50.0, help="Reject plans whose structural stop is farther (ATR)."
        ),
    ) -> None:
        """Market structure: levels, trendlines, volume profile, auto-support, stops and targets."""
        if tf not in TIMEFRAME_SECONDS:
            _err.print(f"Error: unknown timeframe {tf!r}; use one of {', '.join(TIMEFRAME_SECONDS)}.")
            raise typer.Exit(2)
        if chart is not None and not chart.parent.is_dir():
            # Checked before the analysis: a typo in the path should not cost the whole run.
            _err.print(f"Error: cannot write the chart to {chart}: folder {chart.parent} does not exist.")
            raise typer.Exit(2)
        try:
            df, report, simulated, live, setup = run_analysis(symbol, tf, data_dir, bars)
        except MarketDataError as exc:
            _err.print(f"Error: {exc.user_message}")
            raise typer.Exit(1) from None
        if as_json:
            body = json.loads(report.model_dump_json(exclude={"profile": {"volume", "buy", "sell"}}))
            print_json(_out, {**body, **setup})
        else:
            if simulated:
                _out.print("SIMULATED market data (offline default; pass --data-dir for real candles)\n")
            _out.print(report.compact() if compact else report.human())
            start = f"live price {fmt_price(live)}" if live is not None else f"last close {fmt_price(report.close)}"
            _out.print(f"\nTrade plans from structure (from the {start}):")
            for side in ("long", "short"):
                plan = plan_from_report(report, side, price=live, max_stop_atr=max_stop_atr)
                _out.print("  " + _plan_line(plan))
            _out.print("\nSetup score and timeframes:")
            _out.print("  " + alignment_line(setup["alignment"]))
            for side in ("long", "short"):
                _out.print("  " + mcf_line(side, setup["mcf"][side]))
        if chart is not None:
            from tools.charts import ChartSource, PositionLines, render_structure_chart

            # The plan drawn is the first acceptable one, the bias side first; a rejected plan is never drawn.
            sides: tuple[Side, Side] = ("long", "short") if report.bias >= 0 else ("short", "long")
            plans = [plan_from_report(report, side, price=live, max_stop_atr=max_stop_atr) for side in sides]
            drawn = next((p for p in plans if not p.rejected), None)
            lines = (
                PositionLines(drawn.entry, drawn.stop, [t.price for t in drawn.targets], drawn.side) if drawn else None
            )
            source = ChartSource("simulated" if simulated else "replay", simulated, live)
            png = render_structure_chart(df, report, lines, source=source)
            try:
                chart.write_bytes(png)
            except OSError as exc:
                _err.print(f"Error: cannot write the chart to {chart}: {exc.strerror or exc}.")
                raise typer.Exit(1) from None
            _err.print(f"Chart written to {chart} ({len(png) // 1024} KiB).")
