"""Write the live risk engine's confidence table from the consistent backtest.

    .venv/bin/python -m backtest.fit_calibration [--data-dir ../shared/data/ohlcv] [--out engine/risk/...json]

Runs the default backtest (BTC/ETH/SOL 1h, seeds 0-2), fits each rule's confidence on the earlier half of every
symbol's evaluation bars and checks it on the later half (ECE, monotonicity), and writes the table with its
check figures to engine/risk/confidence_calibration.json, which evaluate() then reports live.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from backtest.calibration import CalibrationCheck, check
from backtest.config import BacktestConfig
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


def main() -> None:
    """Run, fit, check and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("BASTION_DATA_DIR", "../shared/data/ohlcv"))
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    args = ap.parse_args()
    cfg = BacktestConfig(seeds=SEEDS)
    run = run_scenarios(args.data_dir, cfg)
    cal = fitted_check(run)
    how = (
        f"python -m backtest.fit_calibration: default backtest {','.join(cfg.symbols)} {cfg.timeframe}, seeds "
        f"{','.join(map(str, SEEDS))}, {len(run.scenarios)} scenarios; fit on each symbol's earlier half of bars, "
        "checked on the later half"
    )
    table = table_of(cal, how)
    args.out.write_text(json.dumps(table.model_dump(mode="json"), indent=1) + "\n")
    print(
        f"wrote {args.out}: {len(table.table)} rules, fit {cal.fit_n} / check {cal.check_n} scenarios, ECE raw "
        f"{cal.raw_ece:.3f} -> calibrated {cal.ece:.3f}, monotone {cal.monotone}"
    )


if __name__ == "__main__":
    main()
