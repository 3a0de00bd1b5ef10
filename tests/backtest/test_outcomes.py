"""Outcome simulation on hand-made paths with known answers (long and mirrored short)."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.config import EXIT, HOLD, PARTIAL, TIGHTEN, BacktestConfig
from backtest.outcomes import Path, Position, best_sets, simulate_actions, walk_plan

CFG = BacktestConfig(fee=0.0)


def bars(*rows: tuple[float, float, float, float]) -> Path:
    """One scenario's path from (open, high, low, close) rows."""
    a = np.array(rows, dtype=np.float64).T[:, None, :]
    return Path(a[0], a[1], a[2], a[3])


def mirror(p: Path) -> Path:
    """The same path reflected around 0 so a short sees what the long saw (prices negative but consistent)."""
    return Path(200 - p.open, 200 - p.low, 200 - p.high, 200 - p.close)


def pos(side: int = 1, stop: float = 95.0, price: float = 100.0, hit: int = 0) -> Position:
    """Entry 100, stop 95 (1R = 5), T1 105, T2 110, ATR 2 — or the mirror image around 100 for a short."""
    m = (lambda x: x) if side > 0 else (lambda x: 200 - x)
    return Position(
        d=np.array([side]),
        entry=np.array([100.0]),
        stop=np.array([m(stop)]),
        t1=np.array([m(105.0)]),
        t2=np.array([m(110.0)]),
        targets_hit=np.array([hit]),
        price=np.array([m(price)]),
        atr=np.array([2.0]),
        risk=np.array([5.0]),
    )


def run(path: Path, side: int = 1, cfg: BacktestConfig = CFG, **kw: float) -> np.ndarray:
    """R of each class for the long, or for the mirrored short on the mirrored path."""
    p = path if side > 0 else mirror(path)
    return simulate_actions(pos(side, **kw), p, cfg)[0]


FLAT = (100.0, 101.0, 99.0, 100.0)


@pytest.mark.parametrize("side", [1, -1])
def test_stop_first(side: int) -> None:
    r = run(bars((100, 101, 94, 95), FLAT, FLAT), side)
    assert r[HOLD] == pytest.approx(-1.0)
    assert r[EXIT] == pytest.approx(0.0)
    assert r[PARTIAL] == pytest.approx(-0.5)
    assert r[TIGHTEN] == pytest.approx(-0.6)  # at entry, not in profit: stop 1.5 ATR behind = 97


@pytest.mark.parametrize("side", [1, -1])
def test_target_first_then_t2(side: int) -> None:
    r = run(bars((100, 106, 100.5, 104), (104, 111, 103, 110), FLAT), side)
    assert r[HOLD] == pytest.approx((0.5 * 5 + 0.5 * 10) / 5)  # T1 half, stop to BE, T2 the rest


@pytest.mark.parametrize("side", [1, -1])
def test_stop_and_target_in_one_candle_resolves_against_the_trader(side: int) -> None:
    r = run(bars((100, 112, 94, 100), FLAT), side)
    assert r[HOLD] == pytest.approx(-1.0)


@pytest.mark.parametrize("side", [1, -1])
def test_t1_then_back_to_breakeven_in_one_candle(side: int) -> None:
    r = run(bars((100, 106, 99, 103), (103, 111, 102, 110)), side)
    assert r[HOLD] == pytest.approx(0.5)  # half at T1, the rest at breakeven in the same bar


@pytest.mark.parametrize("side", [1, -1])
def test_time_exit_at_close_of_last_bar(side: int) -> None:
    r = run(bars(FLAT, (100, 103, 98, 102), (102, 104, 97.5, 102.5)), side)
    assert r[HOLD] == pytest.approx(0.5)
    assert r[TIGHTEN] == pytest.approx(0.5)  # tightened stop 97 never touched


@pytest.mark.parametrize("side", [1, -1])
def test_gap_through_stop_fills_at_open(side: int) -> None:
    r = run(bars((90, 91, 88, 89), FLAT), side)
    assert r[HOLD] == pytest.approx(-2.0)


def test_tighten_in_profit_moves_to_breakeven() -> None:
    r = run(bars((103, 103.5, 99.5, 100), FLAT), price=103.0)
    assert r[TIGHTEN] == pytest.approx(0.0)  # stopped at entry
    assert r[EXIT] == pytest.approx(0.6)
    assert r[HOLD] == pytest.approx(0.0)  # the flat path closes at 100 = entry


def test_no_stop_scenario_holds_to_time_exit() -> None:
    r = run(bars((100, 101, 80, 81), (81, 82, 79, 80)), stop=float("nan"))
    assert r[HOLD] == pytest.approx(-4.0)  # no stop: the loss runs; 1R is still 5
    assert r[TIGHTEN] == pytest.approx(-0.6)  # a stop appears at 97


def test_fees_are_paid_on_entry_and_every_close() -> None:
    cfg = BacktestConfig(fee=0.001)
    r = run(bars(FLAT), cfg=cfg)
    assert r[EXIT] == pytest.approx(-(0.1 + 0.1) / 5)
    r = run(bars((100, 106, 100.5, 104), (104, 111, 103, 110)), cfg=cfg)
    assert r[HOLD] == pytest.approx((0.5 * 5 + 0.5 * 10 - 0.1 - 0.5 * 0.105 - 0.5 * 0.11) / 5)


def test_breached_stop_at_t_exits_on_the_next_open() -> None:
    r = run(bars((94, 95, 93, 94), FLAT), price=94.0)
    assert r[HOLD] == pytest.approx(-1.2)  # the open gaps below the stop: filled there
    assert r[EXIT] == pytest.approx(-1.2)


def test_walk_respects_length_and_reports_state() -> None:
    p = bars((100, 106, 100.5, 104), (104, 111, 103, 110))
    one = lambda length: walk_plan(  # noqa: E731
        p, np.array([1]), np.array([100.0]), np.array([95.0]), np.array([105.0]), np.array([110.0]),
        np.array([0]), 1.0, time_exit=False, length=np.array([length]),
    )  # fmt: skip
    first = one(1)
    assert first.targets_hit[0] == 1 and first.stop[0] == 100.0 and first.closed_at[0] == -1
    both = one(2)
    assert both.targets_hit[0] == 2 and both.closed_at[0] == 1 and both.remaining[0] == 0


def test_best_set_is_every_class_within_tie() -> None:
    r = np.array([[0.0, 0.05, 0.11, -1.0]])
    assert best_sets(r, 0.1).tolist() == [[False, True, True, False]]
