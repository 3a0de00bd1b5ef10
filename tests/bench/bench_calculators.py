"""The pre-trade calculator and the paper account's market-time work: Monte Carlo of SPEC's 50,000 paths (wall and
CPU per run and per path) and a paper account's read with and without a funding mark to settle (CPU per read)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from storage.db import create_engine, session_factory
from tests.exchange.conftest import make_paper_engine
from tests.exchange.test_paper_realism import ClockMarket, opening
from tools.calculators import monte_carlo
from tools.exchange.paper import PaperAccount
from tools.exchange.paper_engine import PaperConfig

RUNS = 5
READS = 200


def bench_monte_carlo(trades: int, paths: int = 50_000) -> tuple[float, float]:
    """Median wall and CPU seconds of one Monte Carlo."""
    walls, cpus = [], []
    for seed in range(RUNS):
        w, c = time.perf_counter(), time.process_time()
        monte_carlo(0.45, 2.0, 1.0, trades=trades, paths=paths, seed=seed)
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


async def bench_paper_reads(folder: Path) -> tuple[float, float]:
    """CPU ms per `balance()` of an account holding one position: no mark due, then a new 8 h mark on every read."""
    engine = await make_paper_engine(folder / "bench.db")
    await engine.dispose()
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    t0 = datetime(2025, 6, 2, 7, 0, tzinfo=UTC)
    market = ClockMarket(50_000, t0)
    account = PaperAccount("bench", market, session_factory(engine), PaperConfig(slippage=Decimal(0)))
    await account.place(opening("e1"))
    c = time.process_time()
    for _ in range(READS):
        await account.balance()
    quiet = (time.process_time() - c) / READS * 1000
    c = time.process_time()
    for i in range(READS):
        market.at = t0 + timedelta(hours=8 * (i + 1))
        await account.balance()
    funded = (time.process_time() - c) / READS * 1000
    await engine.dispose()
    return quiet, funded


def main() -> None:
    """Print the figures."""
    for trades in (100, 500):
        wall, cpu = bench_monte_carlo(trades)
        print(f"monte carlo 50,000 paths x {trades} trades: {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
              f"({cpu / 50_000 * 1e6:.2f} us CPU per path)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        quiet, funded = asyncio.run(bench_paper_reads(Path(tmp)))
    print(f"paper balance() read: {quiet:.2f} ms CPU with nothing due, {funded:.2f} ms CPU settling a funding mark")


if __name__ == "__main__":
    main()
