"""Benchmark: one monitor cycle over 1,000 open paper positions on 3 symbols, rules only, structure cached.

Run: .venv/bin/python tests/bench/bench_monitor.py   (target: median cycle <= 200 ms on 2 cores)
Uses the real 1h candles of ../shared/data/ohlcv (BASTION_DATA_DIR) through the replay provider.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.execution.executor import Executor  # noqa: E402
from engine.execution.guards import GuardLimits  # noqa: E402
from engine.monitor.market_view import StructureMarketViews  # noqa: E402
from engine.monitor.monitor import Monitor  # noqa: E402
from engine.monitor.notifier import RecordingNotifier  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.models import AccountMode, ExchangeAccount, User  # noqa: E402
from tools.exchange.models import IntentKind, OrderIntent, Side  # noqa: E402
from tools.exchange.paper import PaperAccount  # noqa: E402
from tools.exchange.paper_engine import PaperConfig  # noqa: E402
from tools.market.replay import ReplayMarketData  # noqa: E402

POSITIONS = 1_000
SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
CYCLES = 15
TARGET_MS = 200.0


async def main() -> int:
    data_dir = Path(os.environ.get("BASTION_DATA_DIR", ROOT.parent / "shared" / "data" / "ohlcv"))
    if not (data_dir / "BTC_USDT-1h.csv").exists():
        print(f"skipped: no candle data at {data_dir}")
        return 0
    market = ReplayMarketData(data_dir, now=datetime(2025, 6, 1, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        started = time.perf_counter()
        accounts = await _open_positions(sessions, market)
        setup_s = time.perf_counter() - started
        monitor = Monitor(
            sessions,
            open_account=lambda row: _account(accounts, row),
            views=StructureMarketViews(market),
            executor=Executor(sessions, GuardLimits()),
            notifier=RecordingNotifier(),
        )
        first = await _timed(monitor)
        times = [await _timed(monitor) for _ in range(CYCLES)]
        await engine.dispose()
    median = statistics.median(times)
    print(f"positions: {POSITIONS} on {len(SYMBOLS)} symbols in {len(accounts)} paper accounts "
          f"(setup {setup_s:.1f} s)")
    print(f"first cycle (plans created, structure computed): {first:.1f} ms")
    print(f"cycle, structure cached: median {median:.1f} ms, p90 {sorted(times)[int(0.9 * len(times))]:.1f} ms, "
          f"min {min(times):.1f} ms over {CYCLES} cycles")
    print(f"per position: {median / POSITIONS * 1000:.0f} µs; target median <= {TARGET_MS:.0f} ms: "
          f"{'MET' if median <= TARGET_MS else 'MISSED'}")
    return 0


async def _timed(monitor: Monitor) -> float:
    t0 = time.perf_counter()
    report = await monitor.run_cycle()
    elapsed = (time.perf_counter() - t0) * 1000
    assert report.positions == POSITIONS, report.errors[:3]
    return elapsed


async def _account(accounts: dict[int, PaperAccount], row: ExchangeAccount) -> PaperAccount:
    return accounts[row.id or 0]


async def _open_positions(sessions, market: ReplayMarketData) -> dict[int, PaperAccount]:  # type: ignore[no-untyped-def]
    accounts: dict[int, PaperAccount] = {}
    prices = {s: (await market.ticker(s)).last for s in SYMBOLS}
    n_accounts = -(-POSITIONS // len(SYMBOLS))
    async with sessions.begin() as s:
        users = [User(platform="telegram", platform_user_id=str(i)) for i in range(n_accounts)]
        s.add_all(users)
        await s.flush()
        rows = [ExchangeAccount(user_id=u.id, exchange_id="paper", label="p", mode=AccountMode.ADVISE.value,
                                read_only=False) for u in users]
        s.add_all(rows)
        await s.flush()
        ids = [r.id for r in rows]
    opened = 0
    config = PaperConfig(initial_balance=Decimal(10_000_000))
    for account_id in ids:
        paper = PaperAccount(f"paper:{account_id}", market, sessions, config)
        accounts[account_id or 0] = paper
        for i, symbol in enumerate(SYMBOLS):
            if opened == POSITIONS:
                break
            side = Side.BUY if (account_id or 0) % 2 == 0 else Side.SELL
            notional = Decimal(1000 + 10 * i)
            amount = (notional / Decimal(str(prices[symbol]))).quantize(Decimal("0.0001"))
            await paper.place(OrderIntent(intent_id=f"o{account_id}-{i}", account_ref="bench", symbol=symbol,
                                          kind=IntentKind.OPEN, side=side, amount=amount, leverage=2))
            opened += 1
    return accounts


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
