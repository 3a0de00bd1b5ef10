"""Backtest throughput: scenarios per second including structure, rules and outcome simulation.

    .venv/bin/python tests/bench/bench_backtest.py [--data-dir ../shared/data/ohlcv] [--scenarios 2000]

Targets (issue 8): >= 2,000 scenarios/s for the rules engine on 2 cores; the default 3-symbol run < 60 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backtest.config import BacktestConfig  # noqa: E402
from backtest.outcomes import Path as BarPath  # noqa: E402
from backtest.outcomes import simulate_actions  # noqa: E402
from backtest.runner import run_scenarios, score_all  # noqa: E402


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("BASTION_DATA_DIR", str(ROOT.parent / "shared/data/ohlcv")))
    ap.add_argument("--scenarios", type=int, default=2000)
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores available: {cpus}")
    for workers in (1, 0):
        cfg = BacktestConfig(scenarios=args.scenarios, workers=workers)
        started = time.perf_counter()
        run = run_scenarios(args.data_dir, cfg)
        scores = score_all(run)
        secs = time.perf_counter() - started
        n = len(run.scenarios)
        label = "1 process" if workers == 1 else f"{min(cpus or 1, len(cfg.symbols))} processes"
        print(f"default run ({n} scenarios, {label}, incl. data load + scoring): {secs:.2f} s = {n / secs:,.0f} /s")
    rules = next(s for s in scores if s.name == "rules")
    print(f"rules mean R {rules.overall.mean_r:+.3f}, accuracy {rules.overall.accuracy:.3f}")
    # Outcome simulation alone, on the run's own scenarios.
    sc, pos = run.scenarios, run.scenarios.position()
    rng = np.random.default_rng(0)
    k = len(sc)
    o, h, lo, c = (rng.uniform(0.99, 1.01, (k, cfg.horizon)) * sc.price[:, None] for _ in range(4))
    path = BarPath(o, np.maximum.reduce([o, h, lo, c]), np.minimum.reduce([o, h, lo, c]), c)
    started = time.perf_counter()
    simulate_actions(pos, path, cfg)
    secs = time.perf_counter() - started
    print(f"outcome simulation only: {k} scenarios x 4 classes x {cfg.horizon} bars in {secs * 1000:.1f} ms")


if __name__ == "__main__":
    main()
