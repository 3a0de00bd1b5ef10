"""Benchmark of reports and the elite scan on real candles (plain script, not collected by pytest).

    .venv/bin/python tests/bench/bench_reports.py [--data-dir DIR] [--runs N]

Prints, in CPU (process time, all threads: the chart renders in a worker thread) and wall milliseconds:
one report (3 timeframes analysed, plans, profile, context, changes) without and with its chart, the split of
one report into its stages (data, structure, body, chart artists, Agg draw, PNG encode), and a scan of 20
symbol-moments x 3 timeframes (the data has BTC, ETH, SOL: each of 20 distinct (symbol, moment) pairs is a fresh
provider and a cold structure cache, so nothing is reused). Targets: one report <= 200 ms CPU including the
chart; the 20 x 3 scan <= 2 s.

The figures are steady state, per report: imports (matplotlib, pandas: about a second, once per process), the
first figure and the first file reads are paid before the clock starts, as a running bot pays them once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.reports.build import ReportBuilder  # noqa: E402
from engine.reports.render import render_body  # noqa: E402
from engine.scan.qualify import QualifyRules  # noqa: E402
from engine.scan.scan import scan_symbol  # noqa: E402
from tools.charts.structure_chart import (  # noqa: E402
    ChartCanvas,
    ChartSource,
    PositionLines,
    draw_structure,
    encode_png,
    rasterize,
)
from tools.market.replay import ReplayMarketData  # noqa: E402
from tools.structure.mtf import StructureCache  # noqa: E402

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    """Median (CPU ms, wall ms) of `runs` calls."""
    cpu, wall = [], []
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        await fn()
        cpu.append(1000 * (time.process_time() - c))
        wall.append(1000 * (time.perf_counter() - w))
    return statistics.median(cpu), statistics.median(wall)


def ms(seconds: list[float]) -> float:
    """Median of `seconds` in milliseconds."""
    return 1000 * statistics.median(seconds)


async def stages(md: ReplayMarketData, runs: int) -> dict[str, float]:
    """Median CPU ms of each stage of a BTC 4h report, run with the steps `ReportBuilder.build` runs."""
    names = ("data", "structure", "body", "chart artists", "Agg draw", "PNG encode")
    cpu: dict[str, list[float]] = {k: [] for k in names}
    canvas = ChartCanvas()  # as the renderer's thread reuses its canvas
    for _ in range(runs):
        builder = ReportBuilder(md, chart=False)  # a cold structure cache: the analyses are computed
        c = time.process_time()
        data = await builder.fetch("BTC", "4h")
        cpu["data"].append(time.process_time() - c)
        c = time.process_time()
        reports = builder.analyse(data)
        cpu["structure"].append(time.process_time() - c)
        c = time.process_time()
        body, _ = builder.assemble(data, reports, None)
        render_body(body)
        cpu["body"].append(time.process_time() - c)
        plan = body.scenarios[0]
        lines = PositionLines(plan.entry, plan.stop, [t.price for t in plan.targets], plan.side)
        c = time.process_time()
        draw_structure(canvas, data.frames["4h"], reports["4h"], lines, 240, ChartSource(md.name, md.simulated,
                                                                                            body.price))  # fmt: skip
        cpu["chart artists"].append(time.process_time() - c)
        c = time.process_time()
        image = rasterize(canvas.fig)
        cpu["Agg draw"].append(time.process_time() - c)
        c = time.process_time()
        encode_png(image)
        cpu["PNG encode"].append(time.process_time() - c)
        canvas.clear()
    return {k: ms(v) for k, v in cpu.items()}


async def main(data: Path, runs: int) -> None:
    md = ReplayMarketData(data, now=NOW)
    for _ in range(2):
        await ReportBuilder(md).build("BTC")  # warm: file loading, matplotlib import, the thread's first figure

    def cold(chart: bool) -> Callable[[], Awaitable[Any]]:
        # A fresh cache each run: the report's three analyses are computed, not served from the cache.
        return lambda: ReportBuilder(md, chart=chart).build("BTC", "4h")

    no_chart = await timed(cold(False), runs)
    with_chart = await timed(cold(True), runs)
    import matplotlib

    print(f"steady state per report (imports and the first figure excluded; matplotlib {matplotlib.__version__})")
    print(f"report without chart: {no_chart[0]:.0f} ms CPU, {no_chart[1]:.0f} ms wall (median of {runs})")
    print(f"report with chart:    {with_chart[0]:.0f} ms CPU, {with_chart[1]:.0f} ms wall (target 200 ms CPU)")
    split = await stages(md, runs)
    print("split, ms CPU:        " + ", ".join(f"{k} {v:.0f}" for k, v in split.items()))

    moments = [(s, NOW - timedelta(days=11 * i)) for i in range(7) for s in ("BTC", "ETH", "SOL")][:20]
    providers = {s: ReplayMarketData(data, now=NOW) for s in ("BTC", "ETH", "SOL")}
    for s, p in providers.items():
        for tf in ("15m", "1h", "4h"):
            await p.ohlcv(s, tf, 10)  # loading the files is not the scan's work
    rules = QualifyRules()
    c, w = time.process_time(), time.perf_counter()
    setups = 0
    for symbol, moment in moments:
        p = providers[symbol]
        p.set_now(moment)
        setups += len(await scan_symbol(p, symbol, ("15m", "1h", "4h"), rules, StructureCache()))
    cpu_s, wall_s = time.process_time() - c, time.perf_counter() - w
    print(
        f"scan 20 symbols x 3 timeframes: {cpu_s:.2f} s CPU, {wall_s:.2f} s wall ({setups} setups judged; "
        f"{1000 * cpu_s / 60:.1f} ms CPU per timeframe analysed; target 2 s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("BASTION_DATA_DIR", ROOT.parent / "shared/data/ohlcv"))
    parser.add_argument("--data-dir", type=Path, default=default)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    asyncio.run(main(args.data_dir, args.runs))
