"""The guards' minimum calibrated confidence: fitted on the earlier half only, on the table it is given, per level."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backtest.calibration import split_by_time
from backtest.config import BacktestConfig
from backtest.fit_calibration import with_threshold
from backtest.guard_threshold import MIN_LEVEL, describe, fit_threshold, governed
from backtest.runner import run_scenarios
from engine.risk.calibration import UNFITTED_MIN_CONFIDENCE, ConfidenceTable

TABLE = ConfidenceTable(table={"weak": 0.2, "mid": 0.4, "strong": 0.6, "rare": 0.8}, default=0.3, produced_by="test")


def synthetic(
    early_r: dict[str, float], late_r: dict[str, float] | None = None, per_rule: int = 40, rare: int = 5
) -> dict[str, Any]:
    """Two symbols; each rule's decisions make `early_r[rule]` R (HOLD and EXIT make 0) on the earlier half of the
    bars and `late_r[rule]` on the later half; `rare` has too few decisions to judge."""
    late_r = late_r or early_r
    rows: list[tuple[str, str, bool, float, str, int]] = []  # rule, action, hard, R, symbol, bar
    for symbol in ("A", "B"):
        for half, rs in ((0, early_r), (1, late_r)):
            for rule, r in rs.items():
                for i in range(rare if rule == "rare" else per_rule):
                    rows.append((rule, "EXIT_FULL", False, r, symbol, 1000 * half + i))
            # Neither HOLDs nor a hard rule's exits are governed by the minimum: losing ones must not move it.
            rows += [("strong", "HOLD", False, -5.0, symbol, 1000 * half + i) for i in range(per_rule)]
            rows += [("mid", "EMERGENCY_EXIT", True, -5.0, symbol, 1000 * half + i) for i in range(per_rule)]
    cols = list(zip(*rows, strict=True))
    n, r_col = len(rows), np.array(cols[3], dtype=np.float64)
    return dict(
        rules=list(cols[0]),
        actions=list(cols[1]),
        hard=np.array(cols[2]),
        r=r_col,
        hold_r=np.zeros(n),
        exit_r=np.zeros(n),
        hits=r_col > 0,
        symbols=np.array(cols[4], dtype=object),
        bars=np.array(cols[5]),
        cluster=np.arange(n),
    )


def test_the_lowest_level_that_beats_hold_and_exit_with_every_level_above_it_is_the_minimum() -> None:
    data = synthetic({"weak": -0.3, "mid": 0.2, "strong": 0.5, "rare": -2.0})
    g = fit_threshold(TABLE, **data)
    assert g.min_confidence == 0.4
    verdicts = {lv.confidence: lv.beats for lv in g.levels}
    assert verdicts == {0.2: False, 0.4: True, 0.6: True, 0.8: None}  # rare: too few to judge, never blocks
    assert {lv.confidence: lv.n for lv in g.levels}[0.4] == 2 * 40  # the hard exits and the HOLDs left out
    assert {lv.confidence: lv.n for lv in g.levels}[0.8] == 2 * 5 < MIN_LEVEL
    assert g.fit_executed.n == g.check_executed.n == 2 * (40 + 40 + 5)
    assert g.check_left.n == 2 * 40 and g.check_left.vs_hold == pytest.approx(-0.3) and g.check_left.accuracy == 0.0
    assert describe(g)[0].startswith("guards' minimum calibrated confidence: 0.4000")


def test_a_higher_level_that_loses_to_exit_lifts_the_minimum_above_it() -> None:
    assert fit_threshold(TABLE, **synthetic({"weak": 0.3, "mid": 0.2, "strong": 0.5})).min_confidence == 0.2
    data = synthetic({"weak": 0.3, "mid": -0.1, "strong": 0.5})
    assert fit_threshold(TABLE, **data).min_confidence == 0.6
    data["exit_r"] = np.where(np.array(data["rules"]) == "strong", 0.6, 0.0)  # strong beats HOLD but not EXIT
    g = fit_threshold(TABLE, **data)
    assert g.min_confidence == UNFITTED_MIN_CONFIDENCE  # nothing the minimum governs is executed automatically
    assert g.fit_executed.n == 0


def test_the_fit_never_sees_the_later_half_and_the_check_reports_it() -> None:
    early = {"weak": -0.3, "mid": 0.2, "strong": 0.5}
    same = fit_threshold(TABLE, **synthetic(early))
    g = fit_threshold(TABLE, **synthetic(early, {"weak": 1.0, "mid": -1.0, "strong": -1.0}))
    assert same.min_confidence == g.min_confidence == 0.4 and g.levels == same.levels
    assert g.fit_executed.vs_exit == pytest.approx(0.35)
    assert g.check_executed.vs_exit == pytest.approx(-1.0) and g.check_executed.accuracy == 0.0
    assert g.check_left.vs_hold == pytest.approx(1.0)


def test_the_minimum_follows_the_table_it_is_given() -> None:
    data = synthetic({"weak": -0.3, "mid": 0.2, "strong": 0.5})
    refitted = ConfidenceTable(table={"weak": 0.2, "mid": 0.55, "strong": 0.7}, default=0.3, produced_by="test")
    assert fit_threshold(refitted, **data).min_confidence == 0.55
    pooled = ConfidenceTable(table={"weak": 0.5, "mid": 0.5, "strong": 0.7}, default=0.3, produced_by="test")
    assert fit_threshold(pooled, **data).min_confidence == 0.7  # weak and mid pooled: the pool loses less than mid won
    data["r"] = np.where(np.array(data["rules"]) == "weak", -0.05, data["r"])
    assert fit_threshold(pooled, **data).min_confidence == 0.5


def test_governed_decisions_are_the_acting_ones_the_guards_do_not_exempt() -> None:
    actions = np.array(["HOLD", "EXIT_FULL", "EXIT_FULL", "ADJUST_STOP", "TRAIL_STOP", "TP_PARTIAL"], dtype=object)
    hard = np.array([False, False, True, True, False, True])
    assert governed(actions, hard).tolist() == [False, True, False, False, True, False]


def test_a_backtest_run_carries_what_the_fit_needs(ohlcv_dir: Path) -> None:
    run = run_scenarios(ohlcv_dir, BacktestConfig(symbols=["BTC"], scenarios=160, per_bar=4, workers=1))
    assert run.rules_hard.dtype == bool and len(run.rules_hard) == len(run.rules_rule) == len(run.rules.r)
    always_hard = np.isin(np.array(run.rules_rule, dtype=object), ["stop_breached", "hard_max_loss", "no_stop_20x"])
    assert run.rules_hard[always_hard].all()
    guard = with_threshold(run, TABLE).guard
    assert guard is not None
    gov = governed(np.array(run.rules.actions, dtype=object), run.rules_hard)
    early = split_by_time(run.scenarios.symbol, run.scenarios.bar)
    assert sum(lv.n for lv in guard.levels) == int((gov & early).sum()) > 0
    assert guard.check_executed.n + guard.check_left.n == int((gov & ~early).sum())
    assert {lv.confidence for lv in guard.levels} <= {*TABLE.table.values(), TABLE.default}
