"""Backtest throughput: scenarios per second including structure, rules and the simulation of every decision.

    .venv/bin/python tests/bench/bench_backtest.py [--data-dir ../shared/data/ohlcv] [--scenarios 2000]

Target (issue 13): >= 2,000 scored scenarios/s on 2 cores including outcome simulation, printed beside the run's
figures, with the CPU time per scenario (steadier than wall time on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from backtest.config import BacktestConfig  # noqa: E402
from backtest.outcomes import Path as BarPath  # noqa: E402
from backtest.outcomes import candidate_outcomes  # noqa: E402
from backtest.runner import run_scenarios, score_all  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("BASTION_DATA_DIR", str(ROOT.parent / "shared/data/ohlcv")))
    ap.add_argument("--scenarios", type=int, default=2000)
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores available: {cpus}; load average {os.getloadavg()[0]:.2f}")
    run = None
    for workers in (1, 0):
        cfg = BacktestConfig(scenarios=args.scenarios, workers=workers)
        cpu0, started = cpu_seconds(), time.perf_counter()
        run = run_scenarios(args.data_dir, cfg)
        scores = score_all(run)
        secs, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
        n = len(run.scenarios)
        label = "1 process" if workers == 1 else f"{min(cpus or 1, len(cfg.symbols))} processes"
        rules = next(s for s in scores if s.name == "rules").overall
        print(
            f"default run, {label}: {n} scored scenarios ({run.drawn} drawn, the rest flat at t; "
            f"{len(set(run.scenarios.cluster().tolist()))} evaluation bars) in {secs:.2f} s incl. data load, "
            f"decisions, simulation and scoring = {n / secs:,.0f} scored/s ({run.drawn / secs:,.0f} drawn/s); "
            f"CPU {1000 * cpu / n:.2f} ms per scored scenario | rules mean R {rules.mean_r:+.3f} ± {rules.se:.3f}, "
            f"CVaR5 {rules.cvar5:+.3f}, capture {rules.capture:+.3f}, accuracy {rules.accuracy:.3f}"
        )
    assert run is not None
    # Outcome simulation alone (every oracle candidate), on the run's own scenarios and a random path.
    sc, pos = run.scenarios, run.scenarios.position()
    rng = np.random.default_rng(0)
    k, h = len(sc), run.config.horizon
    o, hi, lo, c = (rng.uniform(0.99, 1.01, (k, h)) * sc.price[:, None] for _ in range(4))
    path = BarPath(o, np.maximum.reduce([o, hi, lo, c]), np.minimum.reduce([o, hi, lo, c]), c)
    started = time.perf_counter()
    candidate_outcomes(pos, path, run.config)
    secs = time.perf_counter() - started
    print(f"outcome simulation only: {k} scenarios x 6 candidates x {h} bars in {secs * 1000:.1f} ms")


if __name__ == "__main__":
    main()
