"""Write the live risk engine's confidence table and the guards' minimum on it from the consistent backtest.

    .venv/bin/python -m backtest.fit_calibration [--data-dir ../shared/data/ohlcv] [--out engine/risk/...json]
                                                 [--keep-table]

Runs the default backtest (BTC/ETH/SOL 1h, seeds 0-2), fits each rule's confidence on the earlier half of every
symbol's evaluation bars and checks it on the later half (ECE, monotonicity), fits the execution guards' minimum
calibrated confidence on that table (backtest/guard_threshold.py: fit early, checked late), prints both and writes
them to engine/risk/confidence_calibration.json, which evaluate() reports live and BASTION_RISK__MIN_CONFIDENCE
defaults to. With --keep-table the table in --out is kept as it is and only its minimum is fitted again.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from backtest.calibration import CalibrationCheck, check
from backtest.config import BacktestConfig
from backtest.guard_threshold import describe, fit_threshold
from backtest.metrics import correct
from backtest.runner import ScenarioRun, run_scenarios
from engine.risk.calibration import CALIBRATION_FILE, CalibrationBinOut, ConfidenceTable

SEEDS = [0, 1, 2]


def fitted_check(run: ScenarioRun) -> CalibrationCheck:
    """Fit on the earlier half of the run's bars, check on the later half (against the rules' own confidence)."""
    hits = correct(run.rules.classes, run.rules.r, run.oracle_r, run.config.tie_r)
    return check(run.rules_rule, run.rules_raw_confidence, hits, run.scenarios.symbol, run.scenarios.bar)


def table_of(cal: CalibrationCheck, produced_by: str) -> ConfidenceTable:
    """The shipped form of a calibration check."""
    return ConfidenceTable(
        table={k: round(v, 4) for k, v in sorted(cal.table.items())},
        default=round(cal.default, 4),
        produced_by=produced_by,
        fit_n=cal.fit_n,
        check_n=cal.check_n,
        raw_ece=round(cal.raw_ece, 4),
        ece=round(cal.ece, 4),
        monotone=cal.monotone,
        bins=[CalibrationBinOut.model_validate(b.model_dump()) for b in cal.bins],
    )


def with_threshold(run: ScenarioRun, table: ConfidenceTable) -> ConfidenceTable:
    """`table` with the guards' minimum fitted on it from the run (earlier half) and checked (later half)."""
    hits = correct(run.rules.classes, run.rules.r, run.oracle_r, run.config.tie_r)
    sc = run.scenarios
    guard = fit_threshold(
        table,
        rules=run.rules_rule,
        actions=run.rules.actions,
        hard=run.rules_hard,
        r=run.rules.r,
        hold_r=run.hold_r,
        exit_r=run.exit_r,
        hits=hits,
        symbols=sc.symbol,
        bars=sc.bar,
        cluster=sc.cluster(),
    )
    return table.model_copy(update={"guard": guard})


def main() -> None:
    """Run, fit, check and write the table and the guards' minimum."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("BASTION_DATA_DIR", "../shared/data/ohlcv"))
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    ap.add_argument("--keep-table", action="store_true", help="keep the table in --out; fit only its minimum")
    args = ap.parse_args()
    kept = ConfidenceTable.model_validate_json(args.out.read_text()) if args.keep_table else None
    cfg = BacktestConfig(seeds=SEEDS)
    run = run_scenarios(args.data_dir, cfg)
    if kept is None:
        cal = fitted_check(run)
        how = (
            f"python -m backtest.fit_calibration: default backtest {','.join(cfg.symbols)} {cfg.timeframe}, seeds "
            f"{','.join(map(str, SEEDS))}, {len(run.scenarios)} scenarios; fit on each symbol's earlier half of "
            "bars, checked on the later half"
        )
        table = with_threshold(run, table_of(cal, how))
        print(
            f"{len(table.table)} rules, fit {cal.fit_n} / check {cal.check_n} scenarios, ECE raw "
            f"{cal.raw_ece:.3f} -> calibrated {cal.ece:.3f}, monotone {cal.monotone}"
        )
    else:
        table = with_threshold(run, kept)
    args.out.write_text(json.dumps(table.model_dump(mode="json"), indent=1) + "\n")
    assert table.guard is not None
    print("\n".join(describe(table.guard)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
