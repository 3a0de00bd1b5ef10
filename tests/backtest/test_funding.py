"""Funding on perpetuals where a funding-rate file exists: which bar an event belongs to, who pays it on hand-made
paths (long pays a positive rate, short receives it, only what is still open at the bar's close), and a whole
backtest on futures candles with a funding file beside them, against the same run without it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from backtest.config import BacktestConfig
from backtest.context import NO_FUNDING_FILE, ReplayContexts
from backtest.outcomes import Path as BarPath
from backtest.outcomes import Position, simulate, walk_plan
from backtest.report import funding_words
from backtest.runner import run_scenarios
from bastion.cli.backtest_cmd import register
from tests.backtest.perp_data import perp_copy
from tools.market.files import FundingRates
from tools.market.replay import ReplayMarketData

H_MS = 3_600_000
CFG = BacktestConfig(fee=0.0, slippage=0.0)


def path_of(rows: list[tuple[float, float, float, float]], funding: list[float] | None) -> BarPath:
    a = np.array(rows, dtype=np.float64).T[:, None, :]
    f = None if funding is None else np.array(funding, dtype=np.float64)[None, :]
    return BarPath(a[0], a[1], a[2], a[3], f)


def long_short(entry: float = 100.0) -> dict[str, np.ndarray]:
    """A long and a short at 100, stops 5 away, targets far beyond the path."""
    return {
        "d": np.array([1, -1]),
        "entry": np.array([entry, entry]),
        "stop": np.array([95.0, 105.0]),
        "t1": np.array([150.0, 50.0]),
        "t2": np.array([160.0, 40.0]),
        "targets_hit": np.array([0, 0]),
    }


def both(path: BarPath) -> BarPath:
    """The one-row path for both rows of long_short()."""
    return path.rows(np.array([0, 0]))


FLAT = [(100.0, 101.0, 99.0, 100.0), (100.0, 101.0, 99.0, 102.0), (102.0, 103.0, 101.0, 102.0)]


def test_an_event_belongs_to_the_bar_whose_close_it_falls_at_or_before() -> None:
    opens = np.arange(6, dtype=np.int64) * 8 * H_MS  # six 8h bars
    rates = FundingRates(np.array([0, 8 * H_MS, 12 * H_MS, 40 * H_MS], dtype=np.int64), np.array([1.0, 2.0, 4.0, 8.0]))
    # The event at 0 closes the bar before the first; 8h closes bar 0; 12h is inside bar 1; 40h closes bar 4.
    np.testing.assert_array_equal(rates.per_bar(opens, 8 * H_MS), [2.0, 4.0, 0.0, 0.0, 8.0, 0.0])
    # A daily bar pays the three 8h events inside it.
    day = FundingRates(np.arange(1, 7, dtype=np.int64) * 8 * H_MS, np.full(6, 0.0001))
    np.testing.assert_allclose(day.per_bar(np.array([0, 24 * H_MS]), 24 * H_MS), [0.0003, 0.0003])
    assert day.interval_ms() == 8 * H_MS


def test_a_long_pays_a_positive_rate_and_a_short_receives_it_on_the_value_at_the_close() -> None:
    funded = both(path_of(FLAT, [0.0, 0.001, 0.0]))
    plain = both(path_of(FLAT, None))
    kw = long_short()
    got = walk_plan(funded, **kw, fraction=1.0).pnl - walk_plan(plain, **kw, fraction=1.0).pnl
    np.testing.assert_allclose(got, [-0.001 * 102.0, +0.001 * 102.0])
    # A negative rate: shorts pay longs.
    neg = both(path_of(FLAT, [0.0, -0.002, 0.0]))
    np.testing.assert_allclose(walk_plan(neg, **kw, fraction=1.0).pnl - walk_plan(plain, **kw, fraction=1.0).pnl,
                               [+0.002 * 102.0, -0.002 * 102.0])  # fmt: skip


def test_only_what_is_still_open_at_the_close_pays() -> None:
    # Bar 0 stops the long out (low 94): the funding at bar 0's close and after is not its to pay.
    stopped = path_of([(100.0, 101.0, 94.0, 96.0), (96.0, 97.0, 95.0, 96.0)], [0.01, 0.01])
    one = {k: v[:1] for k, v in long_short().items()}
    assert walk_plan(stopped, **one, fraction=1.0).pnl[0] == pytest.approx(-5.0)
    # T1 takes half in bar 0: the half left pays bar 0's funding; a 40% position pays 40% of it.
    t1 = path_of(t1_rows(), [0.001, 0.0])
    plan = dict(one, t1=np.array([105.0]))
    paid = walk_plan(t1, **plan, fraction=1.0).pnl[0] - walk_plan(path_of(t1_rows(), None), **plan, fraction=1.0).pnl[0]
    assert paid == pytest.approx(-0.5 * 0.001 * 104.0)
    part = walk_plan(t1, **plan, fraction=0.4).pnl[0] - walk_plan(path_of(t1_rows(), None), **plan, fraction=0.4).pnl[0]
    assert part == pytest.approx(-0.2 * 0.001 * 104.0)
    # The time exit at the last bar's close is at the funding instant: that bar's funding is paid.
    last = path_of(FLAT, [0.0, 0.0, 0.001])
    exited = walk_plan(last, **one, fraction=1.0).pnl[0] - walk_plan(path_of(FLAT, None), **one, fraction=1.0).pnl[0]
    assert exited == pytest.approx(-0.001 * 102.0)


def t1_rows() -> list[tuple[float, float, float, float]]:
    return [(100.0, 106.0, 101.0, 104.0), (104.0, 104.5, 103.5, 104.0)]  # T1 in bar 0, never back to entry


def test_exit_at_t_pays_no_funding_and_a_partial_stays_linear() -> None:
    kw = long_short()
    pos = Position(**kw, price=np.array([100.0, 100.0]), atr=np.array([2.0, 2.0]), risk=np.array([5.0, 5.0]))
    funded = both(path_of(FLAT, [0.0005, 0.0005, 0.0005]))
    plain = both(path_of(FLAT, None))
    cfg = BacktestConfig(fee=0.0005, slippage=0.0002)
    exits = [simulate(pos, p, cfg, np.ones(2), pos.stop) for p in (funded, plain)]
    np.testing.assert_array_equal(exits[0], exits[1])
    hold = simulate(pos, funded, cfg, np.zeros(2), pos.stop)
    assert hold[0] < simulate(pos, plain, cfg, np.zeros(2), pos.stop)[0]  # the long paid
    assert hold[1] > simulate(pos, plain, cfg, np.zeros(2), pos.stop)[1]  # the short received
    partial = simulate(pos, funded, cfg, np.full(2, 0.3), pos.stop)
    np.testing.assert_allclose(partial, 0.3 * exits[0] + 0.7 * hold)


def test_a_backtest_charges_funding_from_the_file_and_nothing_else_changes(ohlcv_dir: Path, tmp_path: Path) -> None:
    rate = 0.0003
    rates = perp_copy(ohlcv_dir, tmp_path / "perp", rate)
    cfg = BacktestConfig(symbols=["BTC"], scenarios=60, per_bar=6, chunk=3, workers=1)
    on = run_scenarios(tmp_path / "perp", cfg)
    off = run_scenarios(tmp_path / "perp", cfg.model_copy(update={"funding": False}))
    # The scenarios and every decision are the same: funding is charged on the bars after t, never read at t.
    np.testing.assert_array_equal(on.scenarios.bar, off.scenarios.bar)
    np.testing.assert_array_equal(on.scenarios.stop, off.scenarios.stop)
    assert on.rules.classes.tolist() == off.rules.classes.tolist()
    np.testing.assert_array_equal(on.exit_r, off.exit_r)  # closing at t holds nothing through a funding time
    assert off.path.funding is None and on.path.funding is not None
    assert np.count_nonzero(on.path.funding) > 0
    sc, diff = on.scenarios, on.hold_r - off.hold_r
    # Longs pay, shorts receive: a positive rate lowers every long's HOLD and raises every short's, by at most the
    # rate on every funding time of the horizon at that bar's close, in R.
    bound = (np.abs(on.path.funding) * on.path.close).sum(axis=1) / sc.position().risk + 1e-9
    assert (diff[sc.d > 0] <= 1e-12).all() and (diff[sc.d < 0] >= -1e-12).all()
    assert (np.abs(diff) <= bound).all()
    held = sc.d > 0
    assert diff[held].mean() < 0 < diff[~held].mean()
    # The first funding times of a 48-bar horizon: six of them (every 8h).
    assert set(np.count_nonzero(on.path.funding, axis=1).tolist()) == {6}
    assert on.funding["BTC/USDT:USDT"].startswith("charged from BTC_USDT_USDT-8h-funding_rate.feather")
    assert f"{len(rates):,} events" in on.funding["BTC/USDT:USDT"]
    assert off.funding["BTC/USDT:USDT"].startswith("not charged (--no-funding)")
    assert funding_words(on.funding).startswith("funding: BTC charged from")


def test_spot_candles_say_no_funding(ohlcv_dir: Path) -> None:
    spot = ReplayContexts(ReplayMarketData(ohlcv_dir), "BTC", "1h")
    assert spot.funding is None and spot.funding_note(True) == NO_FUNDING_FILE
    assert funding_words({"BTC/USDT:USDT": NO_FUNDING_FILE, "ETH/USDT:USDT": NO_FUNDING_FILE}) == (
        "no funding (no funding-rate files: spot candles)"
    )
    # One symbol with a file: each symbol says its own.
    mixed = funding_words({"BTC/USDT:USDT": "charged from X, 3 events", "ETH/USDT:USDT": NO_FUNDING_FILE})
    assert mixed == f"funding: BTC charged from X, 3 events; ETH {NO_FUNDING_FILE}"


def test_the_decision_reads_the_rate_settled_by_the_close_of_t_and_no_later_one(
    ohlcv_dir: Path, tmp_path: Path
) -> None:
    rates = perp_copy(ohlcv_dir, tmp_path / "perp", 0.0001)
    ctx = ReplayContexts(ReplayMarketData(tmp_path / "perp"), "BTC", "1h")
    bar = int(np.searchsorted(ctx.full.ts, rates.ts[500])) - 1  # the 1h bar that closes at event 500
    assert ctx.close_time_ms(bar) == rates.ts[500]
    # Every event after the close of t changes; the one at the close of t does not: the view at t is the same.
    later = pd.DataFrame({"date": pd.to_datetime(rates.ts, unit="ms", utc=True), "open": rates.rate})
    later.loc[501:, "open"] = 0.002
    later.loc[500, "open"] = 0.0007
    (tmp_path / "perp" / "BTC_USDT_USDT-8h-funding_rate.feather").unlink()
    later.to_feather(tmp_path / "perp" / "BTC_USDT_USDT-8h-funding_rate.feather")
    moved = ReplayContexts(ReplayMarketData(tmp_path / "perp"), "BTC", "1h")
    assert moved.funding_at(bar) == pytest.approx(0.0007)  # settled at the close of t: known at t
    assert moved.funding_at(bar - 1) == pytest.approx(0.0001)  # an hour earlier it had not settled yet
    assert moved.market_view(bar - 1) == ctx.market_view(bar - 1)
    assert moved.market_view(bar).funding_rate != ctx.market_view(bar).funding_rate


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)
    return app


def test_the_cli_charges_funding_names_the_file_and_leaves_it_out_when_told(ohlcv_dir: Path, tmp_path: Path) -> None:
    perp_copy(ohlcv_dir, tmp_path / "perp", 0.0002)
    args = [
        "backtest",
        "--symbols",
        "BTC",
        "--scenarios",
        "120",
        "--workers",
        "1",
        "--data-dir",
        str(tmp_path / "perp"),
    ]
    on = CliRunner().invoke(_cli(), [*args, "--out", str(tmp_path / "on")])
    assert on.exit_code == 0, on.output
    assert "funding: BTC charged from BTC_USDT_USDT-8h-funding_rate.feather" in on.output
    data = json.loads((tmp_path / "on" / "results.json").read_text())
    assert data["config"]["funding"] is True and data["funding"]["BTC/USDT:USDT"].startswith("charged from")
    off = CliRunner().invoke(_cli(), [*args, "--no-funding", "--out", str(tmp_path / "off")])
    assert off.exit_code == 0, off.output
    assert "funding: BTC not charged (--no-funding)" in off.output
    hold = [
        next(m for m in json.loads((tmp_path / d / "results.json").read_text())["makers"] if m["name"] == "always-HOLD")
        for d in ("on", "off")
    ]
    assert hold[0]["overall"]["mean_r"] != hold[1]["overall"]["mean_r"]


def test_a_corrupt_funding_file_is_one_error_line_and_nothing_is_written(ohlcv_dir: Path, tmp_path: Path) -> None:
    perp_copy(ohlcv_dir, tmp_path / "perp", 0.0002)
    (tmp_path / "perp" / "BTC_USDT_USDT-8h-funding_rate.feather").unlink()
    (tmp_path / "perp" / "BTC_USDT_USDT-funding.csv").write_text(
        "timestamp,fundingRate\n1704067200000,0.0001\n1704096000000,7\n"
    )
    args = ["backtest", "--symbols", "BTC", "--scenarios", "60", "--workers", "1", "--data-dir", str(tmp_path / "perp")]
    result = CliRunner().invoke(_cli(), [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "Error: Funding file BTC_USDT_USDT-funding.csv line 3: rate 7 is not a funding rate" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "results.json").exists()
