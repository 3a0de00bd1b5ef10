"""Benchmark of level quality (plain script, not collected by pytest).

    .venv/bin/python tests/bench/bench_levels.py [--data-dir DIR] [--every N] [--horizon H] [--span all|early|late]
        [--level-tol TOL_1H TOL_4H] [--series BTC,ETH,SOL]

For BTC/ETH/SOL 1h and 4h: every N bars (after a full 1,000-bar window) the levels the analysis
displays, from data known at that bar only; then, over the next H bars, the reaction rate (a
touch followed by a move of 1 ATR away before a close beyond) at displayed grade-3 and all levels
against random zones treated alike: at the same bars and sides, as many per bar, at the ATR distances
and widths of displayed levels of that side (grade 3's own for `g3/rnd`, with its block-bootstrap SE;
all displayed levels' for `all/rnd`), 5 draws each, none of them broken at that bar. Also the median
touches of displayed levels, how many are broken (when shown, and closed through within the horizon),
the plans of those moments (plan_trade long and short from the close: share accepted, share of moments
with at least one, and accepted plans breaking the rules: T1 < 1R, stop beyond the cap or not behind a
holding grade-2+ level), with CPU time per evaluation. `--span early|late`: evaluation bars in the
first or second half of each series only.
Targets (issue 13): grade-3 rate >= 1.5x random; median touches >= 2; <= 20% broken.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.structure.analysis import frame_arrays  # noqa: E402
from tools.structure.config import DEFAULT_CONFIG  # noqa: E402
from tools.structure.levels import Level  # noqa: E402
from tools.structure.quality import level_quality  # noqa: E402
from tools.structure.targets import plan_trade  # noqa: E402

SPANS = {"all": (0.0, 1.0), "early": (0.0, 0.5), "late": (0.5, 1.0)}


class PlanTally:
    """Plans from the close on the displayed levels at each evaluation bar, and rule breaks among accepted ones."""

    def __init__(self, close: object) -> None:
        self.close = close
        self.plans = self.accepted = self.moments = self.moments_ok = self.breaks = 0

    def __call__(self, t: int, atr_value: float, shown: list[Level]) -> None:
        entry = float(self.close[t])  # type: ignore[index]
        ok = 0
        for side in ("long", "short"):
            p = plan_trade(side, entry, atr_value, shown)
            self.plans += 1
            if p.rejected:
                continue
            ok += 1
            lv = next((x for x in shown if x.price == p.stop_level), None)
            d, cfg = (1.0 if side == "long" else -1.0), DEFAULT_CONFIG
            # The stop sits beyond the far edge of a holding grade-2+ level, within the cap, and T1 pays 1R.
            anchored = lv is not None and lv.state == "holding" and lv.grade >= 2
            beyond = lv is not None and anchored and d * ((lv.zone_low if d > 0 else lv.zone_high) - p.stop) > 0
            if p.rr_t1 < cfg.min_rr_t1 or p.risk_atr > cfg.max_stop_atr or not beyond:
                self.breaks += 1
        self.accepted += ok
        self.moments += 1
        self.moments_ok += ok > 0


def load(data_dir: Path, base: str, tf: str) -> pd.DataFrame:
    """A project-convention OHLCV frame from a ccxt CSV."""
    raw = pd.read_csv(data_dir / f"{base}_USDT-{tf}.csv")
    df = raw[["open", "high", "low", "close", "volume"]].astype("float64")
    df.index = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], unit="ms", utc=True), name="time")
    return df


def add_data_arguments(ap: argparse.ArgumentParser) -> None:
    """--data-dir (the shared candles) and --every (bars between evaluations), as the level benchmarks take them."""
    ap.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("BASTION_DATA_DIR", ROOT.parent / "shared/data/ohlcv"))
    )
    ap.add_argument("--every", type=int, default=0, help="bars between evaluations (default: 24 on 1h, 12 on 4h)")


def main() -> None:
    """Print the level-quality table."""
    ap = argparse.ArgumentParser()
    add_data_arguments(ap)
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--bars", type=int, default=0, help="only the last N bars of each series (0: all)")
    ap.add_argument("--span", choices=tuple(SPANS), default="all", help="evaluation bars in this part of each series")
    ap.add_argument("--level-tol", type=float, nargs=2, default=None, metavar=("TOL_1H", "TOL_4H"),
                    help="pivot clustering tolerance in ATRs per timeframe (default: the config's)")  # fmt: skip
    ap.add_argument("--series", default="BTC,ETH,SOL", help="bases, comma-separated")
    args = ap.parse_args()
    head = (
        f"{'series':10s} {'evals':>5s} {'levels':>6s} {'g3 touched':>10s} {'rate g3':>7s} {'rnd g3':>6s} "
        f"{'g3/rnd':>6s} {'SE':>5s} {'rate all':>8s} {'random':>6s} {'all/rnd':>7s} {'med t':>5s} {'brk shown':>9s} "
        f"{'brk H':>5s} {'rnd brk H':>9s} {'plans ok':>8s} {'moments ok':>10s} {'breaks':>6s} {'ms/eval':>7s}"
    )
    print(f"horizon {args.horizon} bars; reaction = touch then 1 ATR away before a close beyond; span {args.span}")
    print(head)
    for tf in ("1h", "4h"):
        for base in args.series.split(","):
            df = load(args.data_dir, base, tf)
            if args.bars:
                df = df.iloc[-args.bars :]
            h, lo, c, v = frame_arrays(df)
            every = args.every or (24 if tf == "1h" else 12)
            cpu = time.process_time()
            tally = PlanTally(c)
            cfg = DEFAULT_CONFIG
            if args.level_tol:
                cfg = dataclasses.replace(cfg, level_tol_atr=args.level_tol[0 if tf == "1h" else 1])
            q = level_quality(h, lo, c, v, every, args.horizon, cfg, on_bar=tally, span=SPANS[args.span])
            ms = 1000 * (time.process_time() - cpu) / max(1, q.evaluations)
            share = 100 * tally.accepted / max(1, tally.plans)
            moments = 100 * tally.moments_ok / max(1, tally.moments)
            print(
                f"{base + ' ' + tf:10s} {q.evaluations:5d} {q.levels:6d} {q.touched_grade3:10d} {q.rate_grade3:7.3f} "
                f"{q.rate_random_grade3:6.3f} {q.ratio_grade3:6.2f} {q.se_ratio_grade3:5.2f} {q.rate_all:8.3f} "
                f"{q.rate_random:6.3f} {q.ratio_all:7.2f} {q.median_touches:5.1f} {100 * q.broken_when_shown:8.1f}% "
                f"{100 * q.broken_within_horizon:4.0f}% {100 * q.random_broken_within_horizon:8.0f}% "
                f"{share:7.1f}% {moments:9.1f}% {tally.breaks:6d} {ms:7.1f}"
            )


if __name__ == "__main__":
    main()
