"""Benchmark of the structure engine (plain script, not collected by pytest).

    .venv/bin/python tests/bench/bench_structure.py [--data-dir DIR] [--replay-steps N]

Prints: full multi-timeframe analysis (3 timeframes x 1,000 bars) median ms; one single-timeframe
analysis and one level pass (`level_pass` and its displayed levels, what the backtest runs per entry
bar) on the 1,200 bars a risk context reads, bar after bar, in ms wall and CPU per call; our swing pivots
and liquidity pools vs the `smartmoneyconcepts` package on the same 3,000 real BTC 1h bars
with speed ratios; and a replay check (bars appended one at a time) counting how many
already-reported labels each implementation rewrote.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("SMC_CREDIT", "0")  # silence the package's import banner

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from smartmoneyconcepts import smc  # noqa: E402

from tools.indicators import atr  # noqa: E402
from tools.structure.analysis import (  # noqa: E402
    analyze_arrays,
    atr_as_of,
    frame_arrays,
    level_pass,
    shown_rows,
    window_pivots,
)
from tools.structure.config import DEFAULT_CONFIG  # noqa: E402
from tools.structure.liquidity import liquidity_pools  # noqa: E402
from tools.structure.mtf import analyze_frames  # noqa: E402
from tools.structure.pivots import find_pivots, pivot_labels  # noqa: E402
from tools.structure.replaycheck import count_rewrites  # noqa: E402

SMC_SWING_LENGTH = 15  # smc's window: 15 bars each side of the bar (ours: 20 left, 15 right)


def load(data_dir: Path, base: str, tf: str) -> pd.DataFrame:
    """A project-convention OHLCV frame from a ccxt CSV."""
    raw = pd.read_csv(data_dir / f"{base}_USDT-{tf}.csv")
    df = raw[["open", "high", "low", "close", "volume"]].astype("float64")
    df.index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], unit="ms", utc=True), name="time")
    return df


def _as_floats(fn: Callable[[int], object], t: int) -> np.ndarray:
    """fn(t) as a float array (the labels a replay check compares)."""
    return np.asarray(fn(t), dtype=float)


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    """Median wall time of `fn` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def ours_swings(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar swing labels and levels from our lookahead-free pivots."""
    h, lo = df["high"].to_numpy(), df["low"].to_numpy()
    return pivot_labels(len(df), find_pivots(h, lo, 20, 15))


def ours_liquidity(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar liquidity pool labels (pivots + ATR included in the timing, like smc's input)."""
    h, lo, c = df["high"].to_numpy(), df["low"].to_numpy(), df["close"].to_numpy()
    piv = find_pivots(h, lo, 20, 15)
    return liquidity_pools(piv, h, lo, atr(h, lo, c), len(df) - 1).labels(len(df))


def smc_liquidity(df: pd.DataFrame, shl: pd.DataFrame | None = None) -> pd.DataFrame:
    """smc liquidity (it needs its own swing labels as input)."""
    shl = smc.swing_highs_lows(df, swing_length=SMC_SWING_LENGTH) if shl is None else shl
    return smc.liquidity(df, shl)


def per_bar(df: pd.DataFrame, bars: int) -> None:
    """ms wall and CPU per call of one analysis and of one level pass, each over `bars` consecutive bars."""
    h, lo, c, v = frame_arrays(df)
    times, cfg, span = df.index, DEFAULT_CONFIG, DEFAULT_CONFIG.window + DEFAULT_CONFIG.atr_warmup
    ends = range(len(c) - bars, len(c))

    def analysis(t: int) -> None:
        k = t - span + 1
        analyze_arrays(h[k : t + 1], lo[k : t + 1], c[k : t + 1], v[k : t + 1], span - 1, "BTC/USDT", "1h", times[k:])

    def entry_levels(t: int) -> None:
        k, as_of = t - span + 1, span - 1
        hh, ll, cc, vv = h[k : t + 1], lo[k : t + 1], c[k : t + 1], v[k : t + 1]
        ws = as_of - cfg.window + 1
        a = atr_as_of(hh, ll, cc, as_of, cfg)
        table = level_pass(hh, ll, cc, vv, as_of, a, window_pivots(hh, ll, as_of, ws, cfg), ws, cfg)
        table.levels(shown_rows(table, cfg))

    print(f"per bar on {span:,} bars (BTC 1h, {bars} consecutive bars):")
    for name, fn in (
        ("analyze_arrays (full report)", analysis),
        ("level_pass (ATR+pivots+nodes, shown)", entry_levels),
    ):
        fn(ends[0])
        wall, cpu = time.perf_counter(), time.process_time()
        for t in ends:
            fn(t)
        w, u = (time.perf_counter() - wall) / bars * 1000, (time.process_time() - cpu) / bars * 1000
        print(f"  {name:36s} {w:6.2f} ms wall  {u:6.2f} ms CPU per call  ({1000 / u:6.0f} calls per CPU second)")


def main() -> None:
    """Run all figures and print them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("BASTION_DATA_DIR", str(ROOT.parent / "shared" / "data" / "ohlcv"))
    ap.add_argument("--data-dir", type=Path, default=Path(default_dir))
    ap.add_argument("--replay-steps", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    if not (args.data_dir / "BTC_USDT-1h.csv").exists():
        sys.exit(f"no candle data in {args.data_dir} (set --data-dir or BASTION_DATA_DIR)")

    frames = {tf: load(args.data_dir, "BTC", tf).iloc[-1000:] for tf in ("15m", "1h", "4h")}
    mtf = median_ms(lambda: analyze_frames(frames, "BTC/USDT"), args.repeat)
    print(
        f"full MTF analysis (3 tf x 1,000 bars; pivots, levels, trendlines, profile, auto-support): "
        f"median {mtf:.2f} ms  (target <= 25 ms) -> {'OK' if mtf <= 25 else 'MISSED'}"
    )

    per_bar(load(args.data_dir, "BTC", "1h").iloc[-1500:], args.repeat * 10)

    df = load(args.data_dir, "BTC", "1h").iloc[-3000:].reset_index(drop=True)
    h, lo, c = (df[k].to_numpy() for k in ("high", "low", "close"))
    shl = smc.swing_highs_lows(df, swing_length=SMC_SWING_LENGTH)
    piv, atr_series = find_pivots(h, lo, 20, 15), atr(h, lo, c)
    rows = [
        ("swing highs/lows", lambda: ours_swings(df), lambda: smc.swing_highs_lows(df, swing_length=SMC_SWING_LENGTH)),
        # Like for like: smc.liquidity gets its swing labels precomputed, ours its pivots and ATR.
        (
            "liquidity levels",
            lambda: liquidity_pools(piv, h, lo, atr_series, len(df) - 1).labels(len(df)),
            lambda: smc.liquidity(df, shl),
        ),
        ("swings+liquidity", lambda: ours_liquidity(df), lambda: smc_liquidity(df)),
    ]
    print(f"\nvs smartmoneyconcepts {smc.__version__} on 3,000 real BTC 1h bars (median of {args.repeat}):")
    for name, ours, theirs in rows:
        a, b = median_ms(ours, args.repeat), median_ms(theirs, max(5, args.repeat // 3))
        print(
            f"  {name:18s} ours {a:8.3f} ms   smc {b:8.3f} ms   speed-up {b / a:6.1f}x  "
            f"(target >= 5x) -> {'OK' if b / a >= 5 else 'MISSED'}"
        )

    steps = args.replay_steps
    start = len(df) - steps
    full = df
    print(f"\nreplay check: bars appended one at a time over the last {steps} of 3,000 bars")
    checks: list[tuple[str, Callable[[int], object]]] = [
        ("ours  swings", lambda t: ours_swings(full.iloc[: t + 1])[0]),
        ("smc   swings", lambda t: smc.swing_highs_lows(full.iloc[: t + 1], swing_length=SMC_SWING_LENGTH)["HighLow"]),
        ("ours  liquidity", lambda t: np.stack(ours_liquidity(full.iloc[: t + 1])).ravel(order="F")),
        (
            "smc   liquidity",
            lambda t: (
                smc_liquidity(full.iloc[: t + 1])[["Liquidity", "Level", "End", "Swept"]].to_numpy(dtype=float).ravel()
            ),
        ),
    ]
    for name, fn in checks:
        t0 = time.perf_counter()
        res = count_rewrites(functools.partial(_as_floats, fn), start, len(df))
        print(
            f"  {name:16s} rewrote {res.rewritten:6d} settled labels, added {res.added:5d} "
            f"({res.steps} appends, {time.perf_counter() - t0:.1f} s)"
        )


if __name__ == "__main__":
    main()
