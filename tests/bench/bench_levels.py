"""Benchmark of level quality (plain script, not collected by pytest).

    .venv/bin/python tests/bench/bench_levels.py [--data-dir DIR] [--every N] [--horizon H]

For BTC/ETH/SOL 1h and 4h: every N bars (after a full 1,000-bar window) the levels the analysis
displays, from data known at that bar only; then, over the next H bars, the reaction rate (a
touch followed by a move of 1 ATR away before a close beyond) at displayed grade-3 and all levels
against random lines at the same ATR distances from price (each distance replayed at a random
evaluation bar, 5 draws). Also the median touches of displayed levels and how many are broken
(when shown, and closed through within the horizon), with CPU time per evaluation.
Targets (issue 13): grade-3 rate >= 1.5x random; median touches >= 2; <= 20% broken.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.structure.analysis import frame_arrays  # noqa: E402
from tools.structure.quality import level_quality  # noqa: E402


def load(data_dir: Path, base: str, tf: str) -> pd.DataFrame:
    """A project-convention OHLCV frame from a ccxt CSV."""
    raw = pd.read_csv(data_dir / f"{base}_USDT-{tf}.csv")
    df = raw[["open", "high", "low", "close", "volume"]].astype("float64")
    df.index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], unit="ms", utc=True), name="time")
    return df


def main() -> None:
    """Print the level-quality table."""
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("BASTION_DATA_DIR", ROOT.parent / "shared/data/ohlcv"))
    )
    ap.add_argument("--every", type=int, default=0, help="bars between evaluations (default: 24 on 1h, 12 on 4h)")
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--bars", type=int, default=0, help="only the last N bars of each series (0: all)")
    args = ap.parse_args()
    head = (
        f"{'series':10s} {'evals':>5s} {'levels':>6s} {'g3 touched':>10s} {'rate g3':>7s} {'rate all':>8s} "
        f"{'random':>6s} {'g3/rnd':>6s} {'all/rnd':>7s} {'med t':>5s} {'brk shown':>9s} {'brk H':>5s} "
        f"{'rnd brk H':>9s} {'ms/eval':>7s}"
    )
    print(f"horizon {args.horizon} bars; reaction = touch then 1 ATR away before a close beyond")
    print(head)
    for tf in ("1h", "4h"):
        for base in ("BTC", "ETH", "SOL"):
            df = load(args.data_dir, base, tf)
            if args.bars:
                df = df.iloc[-args.bars :]
            h, lo, c, v = frame_arrays(df)
            every = args.every or (24 if tf == "1h" else 12)
            cpu = time.process_time()
            q = level_quality(h, lo, c, v, every=every, horizon=args.horizon)
            ms = 1000 * (time.process_time() - cpu) / max(1, q.evaluations)
            print(
                f"{base + ' ' + tf:10s} {q.evaluations:5d} {q.levels:6d} {q.touched_grade3:10d} {q.rate_grade3:7.3f} "
                f"{q.rate_all:8.3f} {q.rate_random:6.3f} {q.ratio_grade3:6.2f} {q.ratio_all:7.2f} "
                f"{q.median_touches:5.1f} {100 * q.broken_when_shown:8.1f}% {100 * q.broken_within_horizon:4.0f}% "
                f"{100 * q.random_broken_within_horizon:8.0f}% {ms:7.1f}"
            )


if __name__ == "__main__":
    main()
