"""Real-data checks: no lookahead in the decision context or the choice of t, positions open at t with every
bar up to t applied, determinism for a seed, the CLI writes its files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from backtest.config import BacktestConfig
from backtest.context import ReplayContexts, risk_context
from backtest.metrics import clustered_se, cvar, score_maker
from backtest.outcomes import Path as BarPath
from backtest.outcomes import walk_plan
from backtest.runner import attribution, run_scenarios, score_all
from backtest.scenarios import STRUCTURE, ScenarioSet, bar_range, draft_group, generate
from backtest.worker import position_at
from bastion.cli.backtest_cmd import register
from engine.risk.evaluate import evaluate
from engine.risk.opinion import build_risk_context
from tools.market.replay import ReplayMarketData
from tools.structure.targets import plan_trade

SMALL = BacktestConfig(symbols=["BTC"], scenarios=40, per_bar=4, chunk=3, workers=1)


def _scrambled_copy(src: Path, dst: Path, after: int, factor: tuple[float, float] = (0.5, 2.0)) -> None:
    """BTC 1h candles with every bar after index `after` replaced by a wild, different path."""
    df = pd.read_csv(src / "BTC_USDT-1h.csv")
    rng = np.random.default_rng(7)
    k = len(df) - after - 1
    scale = rng.uniform(*factor, k)
    for col in ("open", "high", "low", "close"):
        df.loc[after + 1 :, col] = df.loc[after + 1 :, col].to_numpy() * scale
    df.loc[after + 1 :, "high"] = df.loc[after + 1 :, ["open", "high", "low", "close"]].max(axis=1) * 1.01
    df.loc[after + 1 :, "low"] = df.loc[after + 1 :, ["open", "high", "low", "close"]].min(axis=1) * 0.99
    df.loc[after + 1 :, "volume"] = rng.uniform(1, 1e5, k)
    dst.mkdir()
    df.to_csv(dst / "BTC_USDT-1h.csv", index=False)


def test_context_at_t_ignores_every_later_bar(ohlcv_dir: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(ohlcv_dir / "BTC_USDT-1h.csv", real / "BTC_USDT-1h.csv")
    cfg = BacktestConfig(symbols=["BTC"], scenarios=24, per_bar=4)
    a = ReplayContexts(ReplayMarketData(real), "BTC", "1h", cfg.lookback)
    sc = generate(a, cfg, range(6))
    for i in range(0, len(sc), 4):
        t = int(sc.bar[i])
        fake = tmp_path / f"scrambled{i}"
        _scrambled_copy(real, fake, t)
        b = ReplayContexts(ReplayMarketData(fake), "BTC", "1h", cfg.lookback)
        assert not np.array_equal(a.full.close[t + 1 :], b.full.close[t + 1 :])
        ctx_a = risk_context(position_at(sc, i, a), a.market_view(t))
        ctx_b = risk_context(position_at(sc, i, b), b.market_view(t))
        assert build_risk_context(ctx_a) == build_risk_context(ctx_b)
        assert ctx_a.market.structure == ctx_b.market.structure
        assert evaluate(ctx_a) == evaluate(ctx_b)
        # Scenario construction (entry plan, evaluation bar, state at t) reads only bars <= t as well.
        g = sc.group[i]
        sb = generate(b, cfg, range(int(g), int(g) + 1))
        mine = sc.group == g
        np.testing.assert_array_equal(sb.bar, sc.bar[mine])
        np.testing.assert_array_equal(sb.stop, sc.stop[mine])
        # Changing bar t itself changes what the decision sees.
        moved = tmp_path / f"moved{i}"
        _scrambled_copy(real, moved, t - 1, factor=(1.03, 1.06))
        c = ReplayContexts(ReplayMarketData(moved), "BTC", "1h", cfg.lookback)
        ctx_c = risk_context(position_at(sc, i, c), c.market_view(t))
        assert build_risk_context(ctx_c) != build_risk_context(ctx_a)
        assert ctx_c.market != ctx_a.market
        break  # one scrambled copy keeps the test fast; the loop form documents intent


def test_evaluation_bar_is_drawn_without_looking_at_the_path_after_entry(ohlcv_dir: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(ohlcv_dir / "BTC_USDT-1h.csv", real / "BTC_USDT-1h.csv")
    cfg = BacktestConfig(symbols=["BTC"], scenarios=96, per_bar=8)
    a = ReplayContexts(ReplayMarketData(real), "BTC", "1h", cfg.lookback)
    lo, hi = bar_range(len(a.full), cfg)
    for g in range(2):
        da = draft_group(a, cfg, g, cfg.group_size, lo, hi)
        t_a = {int(r[3]) + age for r, age in zip(da.rows, da.ages, strict=True)}
        assert len(t_a) == 1  # one evaluation bar per group
        first_entry = min(int(r[3]) for r in da.rows)
        fake = tmp_path / f"after_entry{g}"
        _scrambled_copy(real, fake, first_entry)
        b = ReplayContexts(ReplayMarketData(fake), "BTC", "1h", cfg.lookback)
        db = draft_group(b, cfg, g, cfg.group_size, lo, hi)
        # Whatever happens after the entries, t is the same bar (the old code chose it by the first stop/T2 touch).
        assert {int(r[3]) + age for r, age in zip(db.rows, db.ages, strict=True)} == t_a


def _same(a: ScenarioSet, b: ScenarioSet) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=f != "symbol") for f in a.__slots__)


def test_deterministic_for_a_seed_and_independent_of_chunking(ohlcv_dir: Path) -> None:
    one = run_scenarios(ohlcv_dir, SMALL)
    two = run_scenarios(ohlcv_dir, SMALL.model_copy(update={"chunk": 10}))
    assert 0 < len(one.scenarios) <= one.drawn <= 40  # duplicates are never drawn, flat ones dropped
    assert _same(one.scenarios, two.scenarios)
    np.testing.assert_array_equal(one.candidates, two.candidates)
    np.testing.assert_array_equal(one.rules.r, two.rules.r)
    assert one.rules.actions == two.rules.actions
    other = run_scenarios(ohlcv_dir, SMALL.model_copy(update={"seed": 1}))
    assert not np.array_equal(one.scenarios.entry_bar, other.scenarios.entry_bar)
    # Seeds pooled: the union of the single-seed runs, clustered apart.
    both = run_scenarios(ohlcv_dir, SMALL.model_copy(update={"seeds": [0, 1]}))
    assert len(both.scenarios) == len(one.scenarios) + len(other.scenarios)
    assert both.drawn == one.drawn + other.drawn
    np.testing.assert_array_equal(both.rules.r, np.concatenate([one.rules.r, other.rules.r]))
    assert len(set(both.scenarios.cluster().tolist())) > len(set(one.scenarios.cluster().tolist()))


def test_scenarios_are_open_positions_at_t(ohlcv_dir: Path) -> None:
    run = run_scenarios(ohlcv_dir, SMALL.model_copy(update={"scenarios": 80}))
    sc = run.scenarios
    assert len(sc) < run.drawn  # some drawn positions were already flat at the close of t: not scenarios
    assert np.all(sc.bar > sc.entry_bar) and np.all(sc.bar - sc.entry_bar <= SMALL.max_age)
    assert np.all(sc.remaining > 0)
    has = ~np.isnan(sc.initial_stop)
    assert np.all(sc.d[has] * (sc.entry[has] - sc.initial_stop[has]) > 0)  # stops on the losing side
    assert np.all(sc.d * (sc.t1 - sc.entry) > 0) and np.all(sc.d * (sc.t2 - sc.t1) > 0)
    assert set(np.unique(sc.d)) == {-1, 1} and np.isnan(sc.initial_stop).any()
    # The state at t is the plan walked over every bar entry+1 .. t: the close of t is never beyond the stop.
    live = ~np.isnan(sc.stop)
    assert np.all(sc.d[live] * (sc.price[live] - sc.stop[live]) > 0)
    full = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h").full
    age = sc.bar - sc.entry_bar
    walked = walk_plan(
        BarPath.take(full.open, full.high, full.low, full.close, sc.entry_bar + 1, int(age.max())),
        sc.d, sc.entry, sc.initial_stop, sc.t1, sc.t2, np.zeros(len(sc), np.int64), 1.0, time_exit=False, length=age,
    )  # fmt: skip
    np.testing.assert_array_equal(walked.targets_hit, sc.targets_hit)
    np.testing.assert_array_equal(walked.remaining, sc.remaining)
    # Structure-setup entries are setups a trader would be offered: their plan (the analyze/calculator one) holds.
    ctx = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h")
    setups = generate(ctx, SMALL.model_copy(update={"structure_share": 1.0, "scenarios": 480}), range(10))
    rows = np.flatnonzero(setups.kind == STRUCTURE)
    assert len(rows)
    for i in rows[:: max(1, len(rows) // 10)]:
        lv = ctx.entry_levels(int(setups.entry_bar[i]))
        assert not plan_trade("long" if setups.d[i] > 0 else "short", lv.close, lv.atr, lv.levels).rejected
    scores = {s.name: s for s in score_all(run)}
    assert scores["oracle"].overall.accuracy == 1.0 and scores["oracle"].overall.regret == 0.0
    for name in ("always-HOLD", "always-EXIT", "random"):
        assert scores["oracle"].overall.mean_r >= scores[name].overall.mean_r
    assert scores["always-HOLD"].overall.capture == 0.0
    rules = scores["rules"].overall
    np.testing.assert_allclose(rules.mean_r, run.rules.r.mean())
    rules_attr = {a.rule: a for a in attribution(run)}
    assert sum(a.won for a in rules_attr.values()) == sum(r != "hold" for r in run.rules_rule)


def test_invalid_answers_score_as_hold_and_are_never_correct() -> None:
    hold, oracle = np.array([0.0, 1.0]), np.array([1.0, 1.0])
    r = np.array([0.0, 1.0])  # the invalid answer keeps the plan: HOLD's R
    best = np.array([[False, False, True, False], [True, False, False, True]])
    s = score_maker(
        "m", np.array([-1, 0]), r, hold, oracle, best, np.array(["X", "X"], dtype=object), np.array([0, 1]), 0.1,
        np.array([0.9, 0.9]),
    )  # fmt: skip
    assert s.overall.invalid == 1 and s.overall.mean_r == 0.5 and s.overall.accuracy == 0.5
    assert s.chosen["INVALID"] == 1 and s.precision["HOLD"] == 1.0 and s.recall["HOLD"] == 1.0


def test_clustered_se_and_cvar() -> None:
    x = np.array([1.0, 1.0, -1.0, -1.0])
    # Two clusters of identical rows: the SE is that of two observations, not four independent ones.
    assert clustered_se(x, np.array([0, 0, 1, 1])) == pytest.approx(1.0)  # sd of the two cluster means / sqrt(2)
    assert clustered_se(x, np.array([0, 1, 2, 3])) < clustered_se(x, np.array([0, 0, 1, 1]))
    assert cvar(np.arange(100.0)) == pytest.approx(2.0)  # the mean of the worst 5


def test_cli_writes_json_markdown_and_plots(ohlcv_dir: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    out = tmp_path / "out"
    args = ["backtest", "--symbols", "BTC", "--scenarios", "300", "--data-dir", str(ohlcv_dir), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in data["makers"]] == ["always-HOLD", "always-EXIT", "random", "oracle", "rules"]
    assert 0 < data["scenarios"] <= data["drawn"] <= 300
    summary = (out / "summary.md").read_text()
    assert "| rules |" in summary and "CVaR 5%" in summary and " ± " in summary and "75.4%" in summary
    assert "Per-rule attribution" in summary and "vs always-EXIT" in summary and "| verdict |" in summary
    assert "made the most R" in summary and "made the most R" in result.output  # the winner, in words
    for png in ("r_distribution.png", "calibration.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_cli_refuses_a_missing_data_folder(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    result = CliRunner().invoke(app, ["backtest", "--data-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
