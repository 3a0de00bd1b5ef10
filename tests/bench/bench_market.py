"""Market data benchmark (a plain script): `.venv/bin/python tests/bench/bench_market.py`.

1. 1,000 concurrent price requests over 10 symbols against the ccxt provider (binanceusdm with its
   network replaced by recorded responses and 20 ms of latency) must cause at most 10 provider calls.
2. Reading 5,000 candles from replay while "now" moves bar by bar must take < 5 ms median.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.market.recorded import RECORDED_AT_MS, recorded_exchange  # noqa: E402
from tools.market.ccxt_live import CcxtMarketData  # noqa: E402
from tools.market.replay import ReplayMarketData  # noqa: E402
from tools.market.simulated import SimulatedMarketData  # noqa: E402

SYMBOLS = ["BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "AVAX", "LINK", "LTC"]
REQUESTS = 1_000
CANDLES = 5_000


async def bench_coalescing() -> bool:
    exchange, recorder = recorded_exchange("binanceusdm")
    calls = {"fetch_ticker": 0}
    original = exchange.fetch_ticker

    async def counted(symbol: str, params: dict[str, Any] | None = None) -> Any:
        calls["fetch_ticker"] += 1
        return await original(symbol, params or {})

    async def latency(url: str) -> None:
        await asyncio.sleep(0.02)

    exchange.fetch_ticker = counted
    recorder.before = latency
    provider = CcxtMarketData(exchange, clock=lambda: RECORDED_AT_MS / 1000)
    try:
        await provider.resolve("BTC")  # markets load once at start-up, not per request
        spellings = [f"{s}USDT" if i % 3 else s.lower() for i, s in enumerate(SYMBOLS)]
        asks = [spellings[i % len(spellings)] for i in range(REQUESTS)]
        t0 = time.perf_counter()
        results = await asyncio.gather(*(provider.ticker(s) for s in asks))
        elapsed = time.perf_counter() - t0
    finally:
        await provider.close()
    assert len({r.symbol for r in results}) == len(SYMBOLS)
    http = recorder.count("/ticker/24hr") + recorder.count("/ticker/bookTicker")
    ok = calls["fetch_ticker"] <= len(SYMBOLS)
    print(f"[coalescing] {REQUESTS} concurrent price requests over {len(SYMBOLS)} symbols in {elapsed * 1000:.0f} ms")
    print(
        f"[coalescing] provider calls (fetch_ticker): {calls['fetch_ticker']}  (limit {len(SYMBOLS)})  "
        f"HTTP requests: {http} (24h ticker + book ticker per symbol)  "
        f"coalesced waiters: {provider.cache.stats.coalesced}  -> {'PASS' if ok else 'FAIL'}"
    )
    return ok


def _data_dir() -> tuple[Path, str]:
    real = Path(os.environ.get("BASTION_DATA_DIR", ROOT.parent / "shared" / "data" / "ohlcv"))
    if (real / "BTC_USDT-1h.csv").exists():
        return real, f"real files in {real}"
    # No real data here: write simulated candles in the same CSV format.
    folder = Path(tempfile.mkdtemp(prefix="bench_market_"))
    sim = SimulatedMarketData(seed=1, now="2026-01-01")
    for tf in ("1h", "4h"):
        a = sim.candles("BTC", tf, 12_000)
        pd.DataFrame(
            {
                "timestamp": a.ts,
                "datetime": "",
                "open": a.open,
                "high": a.high,
                "low": a.low,
                "close": a.close,
                "volume": a.volume,
            }
        ).to_csv(folder / f"BTC_USDT-{tf}.csv", index=False)
    return folder, "simulated candles written as CSV (real data absent)"


async def bench_replay() -> bool:
    folder, what = _data_dir()
    replay = ReplayMarketData(folder)
    first, _ = replay.span("BTC", "1h")
    start = pd.Timestamp(first).value // 1_000_000 + (CANDLES + 10) * 3_600_000
    # Where the finer 15m file also exists, a mid-bar "now" gets a partial candle built from it.
    start = max(start, pd.Timestamp("2025-06-01", tz="UTC").value // 1_000_000)
    await replay.ohlcv("BTC", "1h", CANDLES)  # load the file once
    await replay.ohlcv("BTC", "1d", 10)  # and build the resampled daily series once
    ok = True
    print(f"[replay] data: {what}")
    for label, tf, step_ms in (
        ("1h native", "1h", 3_600_000),
        ("1h, now mid-bar", "1h", 3_600_000 + 900_000),
        ("1d resampled + partial", "1d", 3_600_000),
    ):
        frame_times, array_times = [], []
        for i in range(300):
            replay.set_now(start + i * step_ms)
            t0 = time.perf_counter()
            frame = await replay.ohlcv("BTC", tf, CANDLES)
            frame_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            replay.candles("BTC", tf, CANDLES)
            array_times.append(time.perf_counter() - t0)
        med = statistics.median(frame_times) * 1000
        p95 = float(np.percentile(frame_times, 95)) * 1000
        arr = statistics.median(array_times) * 1e6
        passed = med < 5.0
        ok &= passed
        print(
            f"[replay] {label:24s} {len(frame):5d} candles: DataFrame median {med:.3f} ms, p95 {p95:.3f} ms; "
            f"arrays median {arr:.0f} us  -> {'PASS' if passed else 'FAIL'} (< 5 ms)"
        )
    return ok


def main() -> int:
    """Run both benchmarks; exit status 1 when a target is missed."""
    ok = asyncio.run(bench_coalescing())
    ok &= asyncio.run(bench_replay())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
