"""The rules engine against always-EXIT by deciding rule: totals, means with clustered SE, both halves, the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backtest.config import BacktestConfig
from backtest.deciders import DeciderScore, decider_scores
from backtest.report import BacktestResult, build_result, markdown
from backtest.runner import all_makers, attribution, run_scenarios, score_all

# Six scenarios of one symbol at bars 10..15 (median 12.5: bars 10-12 are the earlier half).
RULES = ["hold", "hold", "guarding_line", "hold", "hold", "guarding_line"]
RULES_R = np.array([0.0, -1.0, 0.5, 2.0, -0.5, 0.5])
HOLD_R = np.array([0.0, -1.0, -2.0, 2.0, -0.5, 1.0])
EXIT_R = np.array([0.5, 0.0, 0.5, 0.0, 0.5, 0.5])
CLUSTER = np.array([0, 0, 1, 2, 3, 3])
SYMBOLS = np.array(["BTC/USDT"] * 6, dtype=object)
BARS = np.arange(10, 16)


def scores() -> dict[str, DeciderScore]:
    out = decider_scores(RULES, RULES_R, HOLD_R, EXIT_R, CLUSTER, SYMBOLS, BARS)
    assert [s.rule for s in out] == ["hold", "guarding_line"]  # the largest loss against EXIT first
    return {s.rule: s for s in out}


def test_each_deciding_rule_gets_its_rows_against_exit() -> None:
    by = scores()
    hold, guard = by["hold"], by["guarding_line"]
    assert (hold.n, guard.n) == (4, 2) and hold.share == pytest.approx(4 / 6)
    # hold rows: rules - EXIT = -0.5, -1, +2, -1 -> total -0.5, mean -0.125
    assert hold.vs_exit_sum == pytest.approx(-0.5) and hold.vs_exit.mean == pytest.approx(-0.125)
    assert hold.vs_exit.se > 0 and guard.vs_exit.mean == 0.0 and guard.vs_exit_sum == 0.0
    # What holding would have made where the guarding line exited: -2.5 and +0.5 against EXIT.
    assert guard.hold_vs_exit.mean == pytest.approx(-1.0)


def test_halves_split_each_symbols_bars_at_the_median() -> None:
    hold = scores()["hold"]
    assert hold.early.mean == pytest.approx(-0.75)  # bars 10, 11
    assert hold.late.mean == pytest.approx(0.5)  # bars 13, 14


def test_summary_prints_the_table() -> None:
    deciders = decider_scores(RULES, RULES_R, HOLD_R, EXIT_R, CLUSTER, SYMBOLS, BARS)
    result = BacktestResult(
        config=BacktestConfig(), scenarios=6, drawn=6, mix={}, best_share={}, makers=[], deciders=deciders
    )
    text = markdown(result)
    assert "## Where the rules stand against always-EXIT, by the rule that decided" in text
    row = next(line for line in text.splitlines() if line.startswith("| hold |"))
    assert "| 4 | 66.7% | -0.125 ± " in row and "| -0.5 |" in row and "-0.750" in row and "+0.500" in row


def test_a_half_without_the_rule_reads_n_a() -> None:
    rules = ["hold", "hold", "hold", "safety_net"]  # safety_net decided only in the later half, in one cluster
    out = decider_scores(rules, np.zeros(4), np.zeros(4), np.ones(4), np.array([0, 1, 2, 3]), SYMBOLS[:4], np.arange(4))
    result = BacktestResult(
        config=BacktestConfig(), scenarios=4, drawn=4, mix={}, best_share={}, makers=[], deciders=out
    )
    row = next(line for line in markdown(result).splitlines() if line.startswith("| safety_net |"))
    assert "nan" not in row and "| n/a |" in row and "-1.000 ± n/a" in row


def test_a_run_s_result_splits_every_scenario_by_its_deciding_rule(ohlcv_dir: Path) -> None:
    run = run_scenarios(ohlcv_dir, BacktestConfig(symbols=["BTC"], scenarios=120, per_bar=6, chunk=4, workers=1))
    result = build_result(run, all_makers(run), score_all(run), attribution(run))
    by = {s.rule: s for s in result.deciders}
    assert sum(s.n for s in by.values()) == len(run.scenarios)
    assert {r: by[r].n for r in by} == {r: run.rules_rule.count(r) for r in set(run.rules_rule)}
    assert sum(s.vs_exit_sum for s in by.values()) == pytest.approx(float(np.sum(run.rules.r - run.exit_r)))
    hold = np.array(run.rules_rule) == "hold"
    if hold.any():  # where no rule acted, the rules' R is holding's
        assert by["hold"].vs_exit.mean == pytest.approx(by["hold"].hold_vs_exit.mean)
