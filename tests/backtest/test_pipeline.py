"""Real-data checks: no lookahead in the decision context, determinism for a seed, the CLI writes its files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from typer.testing import CliRunner

from backtest.config import BacktestConfig
from backtest.context import ReplayContexts, risk_context
from backtest.metrics import score_maker
from backtest.runner import run_scenarios, score_all
from backtest.scenarios import ScenarioSet, generate
from backtest.worker import position_at
from bastion.cli.backtest_cmd import register
from engine.risk.evaluate import evaluate
from engine.risk.opinion import build_risk_context
from tools.market.replay import ReplayMarketData

SMALL = BacktestConfig(symbols=["BTC"], scenarios=40, per_bar=4, chunk=3, workers=1)


def _scrambled_copy(src: Path, dst: Path, after: int) -> None:
    """BTC 1h candles with every bar after index `after` replaced by a wild, different path."""
    df = pd.read_csv(src / "BTC_USDT-1h.csv")
    rng = np.random.default_rng(7)
    k = len(df) - after - 1
    scale = rng.uniform(0.5, 2.0, k)
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
        sb = generate(b, cfg, range(i // 4, i // 4 + 1))
        np.testing.assert_array_equal(sb.bar, sc.bar[i : i + 4])
        np.testing.assert_array_equal(sb.stop, sc.stop[i : i + 4])
        break  # one scrambled copy keeps the test fast; the loop form documents intent


def _same(a: ScenarioSet, b: ScenarioSet) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=f != "symbol") for f in a.__slots__)


def test_deterministic_for_a_seed_and_independent_of_chunking(ohlcv_dir: Path) -> None:
    one = run_scenarios(ohlcv_dir, SMALL)
    two = run_scenarios(ohlcv_dir, SMALL.model_copy(update={"chunk": 10}))
    assert len(one.scenarios) == 40
    assert _same(one.scenarios, two.scenarios)
    np.testing.assert_array_equal(one.outcomes, two.outcomes)
    assert one.rules.actions == two.rules.actions
    other = run_scenarios(ohlcv_dir, SMALL.model_copy(update={"seed": 1}))
    assert not np.array_equal(one.scenarios.entry_bar, other.scenarios.entry_bar)


def test_scenarios_are_open_positions_at_t(ohlcv_dir: Path) -> None:
    run = run_scenarios(ohlcv_dir, SMALL.model_copy(update={"scenarios": 80}))
    sc = run.scenarios
    assert np.all(sc.bar > sc.entry_bar) and np.all(sc.bar - sc.entry_bar <= SMALL.max_age)
    has = ~np.isnan(sc.initial_stop)
    assert np.all(sc.d[has] * (sc.entry[has] - sc.initial_stop[has]) > 0)  # stops on the losing side
    assert np.all(sc.d * (sc.t1 - sc.entry) > 0) and np.all(sc.d * (sc.t2 - sc.t1) > 0)
    assert set(np.unique(sc.d)) == {-1, 1} and np.isnan(sc.initial_stop).any()
    scores = {s.name: s for s in score_all(run)}
    assert scores["oracle"].overall.accuracy == 1.0
    assert scores["oracle"].overall.mean_r >= max(s.overall.mean_r for s in scores.values())
    assert scores["always-HOLD"].overall.capture == 0.0


def test_invalid_answers_score_as_hold_and_are_never_correct() -> None:
    outcomes = np.array([[0.0, 0.5, 1.0, 0.0], [1.0, 0.5, 0.0, 1.0]])
    best = outcomes >= outcomes.max(axis=1, keepdims=True) - 0.1
    s = score_maker("m", np.array([-1, 0]), outcomes, best, np.array(["X", "X"], dtype=object), np.array([0.9, 0.9]))
    assert s.overall.invalid == 1 and s.overall.mean_r == 0.5 and s.overall.accuracy == 0.5
    assert s.confusion[2][4] == 1 and s.chosen["INVALID"] == 1


def test_cli_writes_json_markdown_and_plots(ohlcv_dir: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    out = tmp_path / "out"
    args = ["backtest", "--symbols", "BTC", "--scenarios", "16", "--data-dir", str(ohlcv_dir), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in data["makers"]] == ["always-HOLD", "always-EXIT", "random", "oracle", "rules"]
    assert data["scenarios"] == 16
    summary = (out / "summary.md").read_text()
    assert "| rules |" in summary and "confusion matrix" in summary and "75.4%" in summary
    for png in ("r_distribution.png", "confusion_rules.png", "calibration.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_cli_refuses_a_missing_data_folder(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    result = CliRunner().invoke(app, ["backtest", "--data-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output
