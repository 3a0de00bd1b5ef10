"""Backtest throughput: scenarios per second including structure, rules and the simulation of every decision.

    .venv/bin/python tests/bench/bench_backtest.py [--data-dir ../shared/data/ohlcv] [--scenarios 5000]

A data folder with a perpetual's funding-rate file beside its candles runs with funding charged (the shared spot
candles have none); the last line times the outcome simulation with and without funding side by side.

Target (issue 13): >= 2,000 scored scenarios/s on 2 cores including outcome simulation, printed beside the run's
figures, with the CPU seconds per 1,000 scenarios (steadier than wall time on a shared machine: 2 cores reach
2,000/s when one scenario costs at most 1.0 CPU ms and the work splits evenly). The CPU split says where the time
goes: the level pass at the entry bars (tools.structure level_pass), the structure report at each evaluation bar
(analyze_arrays), the rules, the outcome simulation, the rest.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import backtest.context as bt_context  # noqa: E402
import backtest.worker as bt_worker  # noqa: E402
from backtest.config import BacktestConfig  # noqa: E402
from backtest.outcomes import Path as BarPath  # noqa: E402
from backtest.outcomes import candidate_outcomes  # noqa: E402
from backtest.runner import run_scenarios, score_all  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(owner: Any, name: str, into: dict[str, float], label: str) -> Callable[[], None]:
    """Wrap owner.name to add its CPU time to into[label]; returns the undo."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*a: Any, **k: Any) -> Any:
        t0 = time.process_time()
        try:
            return original(*a, **k)
        finally:
            into[label] = into.get(label, 0.0) + time.process_time() - t0

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def cpu_split(data_dir: str, cfg: BacktestConfig) -> tuple[int, float, dict[str, float]]:
    """One in-process run with the main stages timed (CPU): (scored scenarios, CPU s, seconds per stage)."""
    spent: dict[str, float] = {}
    undo = [
        _timed(bt_context, "level_pass", spent, "entry level pass (level_pass)"),
        _timed(bt_context, "context_structure", spent, "structure report at t (analyze_arrays)"),
        _timed(bt_worker, "triggered", spent, "rules"),
        _timed(bt_worker, "decide", spent, "rules"),
        _timed(bt_worker, "decision_contexts", spent, "risk contexts"),
        _timed(bt_worker, "simulate_rows", spent, "outcome simulation"),
    ]
    try:
        cpu0 = time.process_time()
        run = run_scenarios(data_dir, cfg.model_copy(update={"workers": 1}))
        cpu = time.process_time() - cpu0
    finally:
        for u in undo:
            u()
    return len(run.scenarios), cpu, spent


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=os.environ.get("BASTION_DATA_DIR", str(ROOT.parent / "shared/data/ohlcv")))
    ap.add_argument("--scenarios", type=int, default=BacktestConfig().scenarios)
    args = ap.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores available: {cpus}; load average {os.getloadavg()[0]:.2f}")
    run = None
    for workers in (1, 2):
        cfg = BacktestConfig(scenarios=args.scenarios, workers=workers)
        cpu0, started = cpu_seconds(), time.perf_counter()
        run = run_scenarios(args.data_dir, cfg)
        scores = score_all(run)
        secs, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
        n = len(run.scenarios)
        rules = next(s for s in scores if s.name == "rules").overall
        print(
            f"default run, {workers} process{'es' if workers > 1 else ''}: {n} scored scenarios ({run.drawn} drawn, "
            f"the rest flat at t; {len(set(run.scenarios.cluster().tolist()))} evaluation bars) in {secs:.2f} s wall "
            f"incl. data load, decisions, simulation and scoring = {n / secs:,.0f} scored/s; "
            f"CPU {1000 * cpu / n:.2f} s per 1,000 scored scenarios (2 free cores: {2 * n / cpu:,.0f}/s) | "
            f"rules mean R {rules.mean_r:+.3f} ± "
            f"{rules.se:.3f}, CVaR5 {rules.cvar5:+.3f}, capture {rules.capture:+.3f}, accuracy {rules.accuracy:.3f}"
        )
    assert run is not None
    n, cpu, spent = cpu_split(args.data_dir, BacktestConfig(scenarios=args.scenarios))
    rest = cpu - sum(spent.values())
    print(
        f"CPU split, 1 process ({n} scored, {1000 * cpu / n:.2f} s per 1,000): "
        + ", ".join(f"{k} {100 * v / cpu:.0f}%" for k, v in sorted(spent.items(), key=lambda kv: -kv[1]))
        + f", rest (scenario drafting, walking to t, data) {100 * rest / cpu:.0f}%"
    )
    # Outcome simulation alone (every oracle candidate), on the run's own scenarios and a random path.
    sc, pos = run.scenarios, run.scenarios.position()
    rng = np.random.default_rng(0)
    k, h = len(sc), run.config.horizon
    o, hi, lo, c = (rng.uniform(0.99, 1.01, (k, h)) * sc.price[:, None] for _ in range(4))
    path = BarPath(o, np.maximum.reduce([o, hi, lo, c]), np.minimum.reduce([o, hi, lo, c]), c)
    # The same paths with a perpetual's funding (an event at every 8th bar), alternated with the plain walk.
    funding = np.zeros((k, h))
    funding[:, 7::8] = rng.normal(0.0001, 0.0002, funding[:, 7::8].shape)
    funded = BarPath(path.open, path.high, path.low, path.close, funding)
    walks: dict[str, list[float]] = {"no funding": [], "funding every 8 bars": []}
    for _ in range(5):
        for label, p in (("no funding", path), ("funding every 8 bars", funded)):
            t0 = time.process_time()
            candidate_outcomes(pos, p, run.config)
            walks[label].append(time.process_time() - t0)
    plain, paid = (float(np.median(v)) for v in walks.values())
    print(
        f"outcome simulation only: {k} scenarios x 6 candidates x {h} bars, median of 5 alternated: "
        f"{plain * 1000:.1f} ms CPU without funding, {paid * 1000:.1f} ms with it ({paid / plain:.2f}x); "
        f"{1e6 * paid / k:.1f} µs CPU per scenario with funding"
    )


if __name__ == "__main__":
    main()
