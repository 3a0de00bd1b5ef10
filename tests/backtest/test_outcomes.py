"""Outcome simulation on hand-made paths with known answers (long and mirrored short): every decision is
simulated as given (its close %, its new stop), from bar t+1, with fees, slippage and the stop first in a bar."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backtest.config import EXIT, HOLD, PARTIAL, TIGHTEN, BacktestConfig
from backtest.outcomes import (
    CANDIDATES,
    Path,
    Position,
    best_of,
    best_sets,
    candidate_outcomes,
    simulate,
    walk_plan,
)
from backtest.scenarios import state_at

CFG = BacktestConfig(fee=0.0, slippage=0.0)
NAN = float("nan")


def bars(*rows: tuple[float, float, float, float]) -> Path:
    """One scenario's path from (open, high, low, close) rows."""
    a = np.array(rows, dtype=np.float64).T[:, None, :]
    return Path(a[0], a[1], a[2], a[3])


def mirror(p: Path) -> Path:
    """The same path reflected around 100 so a short sees what the long saw."""
    return Path(200 - p.open, 200 - p.low, 200 - p.high, 200 - p.close)


def m(side: int, x: float) -> float:
    return x if side > 0 else 200 - x


def pos(side: int = 1, stop: float = 95.0, price: float = 100.0, hit: int = 0) -> Position:
    """Entry 100, stop 95 (1R = 5), T1 105, T2 110, ATR 2 — or the mirror image around 100 for a short."""
    return Position(
        d=np.array([side]),
        entry=np.array([100.0]),
        stop=np.array([m(side, stop)]),
        t1=np.array([m(side, 105.0)]),
        t2=np.array([m(side, 110.0)]),
        targets_hit=np.array([hit]),
        price=np.array([m(side, price)]),
        atr=np.array([2.0]),
        risk=np.array([5.0]),
    )


def r_of(
    path: Path,
    side: int = 1,
    close: float = 0.0,
    new_stop: float | None = None,
    cfg: BacktestConfig = CFG,
    **kw: float,
) -> float:
    """R of one decision (close a share at t, stop for the rest) for the long, or the mirrored short."""
    p = pos(side, **kw)
    stop = p.stop if new_stop is None else np.array([m(side, new_stop)])
    return float(simulate(p, path if side > 0 else mirror(path), cfg, np.array([close]), stop)[0])


FLAT = (100.0, 101.0, 99.0, 100.0)


@pytest.mark.parametrize("side", [1, -1])
def test_stop_first(side: int) -> None:
    path = bars((100, 101, 94, 95), FLAT, FLAT)
    assert r_of(path, side) == pytest.approx(-1.0)
    assert r_of(path, side, close=1.0) == pytest.approx(0.0)
    assert r_of(path, side, close=0.5) == pytest.approx(-0.5)
    assert r_of(path, side, new_stop=97.0) == pytest.approx(-0.6)


@pytest.mark.parametrize("side", [1, -1])
def test_target_first_then_t2(side: int) -> None:
    assert r_of(bars((100, 106, 100.5, 104), (104, 111, 103, 110), FLAT), side) == pytest.approx((2.5 + 5) / 5)


@pytest.mark.parametrize("side", [1, -1])
def test_stop_and_target_in_one_candle_resolves_against_the_trader(side: int) -> None:
    assert r_of(bars((100, 112, 94, 100), FLAT), side) == pytest.approx(-1.0)


@pytest.mark.parametrize("side", [1, -1])
def test_t1_then_back_to_breakeven_in_one_candle(side: int) -> None:
    assert r_of(bars((100, 106, 99, 103), (103, 111, 102, 110)), side) == pytest.approx(0.5)


@pytest.mark.parametrize("side", [1, -1])
def test_gap_through_stop_fills_at_open(side: int) -> None:
    assert r_of(bars((90, 91, 88, 89), FLAT), side) == pytest.approx(-2.0)


@pytest.mark.parametrize("side", [1, -1])
def test_partial_30_is_three_tenths_exit_and_seven_tenths_hold_of_the_rest(side: int) -> None:
    cfg = BacktestConfig(fee=0.001, slippage=0.0005)
    path = bars((100, 106, 100.5, 104), (104, 111, 103, 110), FLAT)
    hold, ex = r_of(path, side, cfg=cfg, price=102.0), r_of(path, side, close=1.0, cfg=cfg, price=102.0)
    partial = r_of(path, side, close=0.3, cfg=cfg, price=102.0)
    assert partial == pytest.approx(0.3 * ex + 0.7 * hold)
    assert hold > partial > ex  # the path runs to T2: closing early costs, in proportion


@pytest.mark.parametrize("side", [1, -1])
def test_stop_moved_to_breakeven_changes_the_outcome_where_price_returns_to_entry(side: int) -> None:
    # In profit at t (103); the path comes back through entry and down to the old stop.
    path = bars((103, 103.5, 99.5, 100), (100, 100.5, 94, 95), FLAT)
    held = r_of(path, side, price=103.0)
    at_be = r_of(path, side, new_stop=100.0, price=103.0)
    assert held == pytest.approx(-1.0)
    assert at_be == pytest.approx(0.0)
    # The same stop move on a path that never returns to entry changes nothing.
    up = bars((103, 104, 102, 103.5), (103.5, 104.5, 102.5, 104))
    assert r_of(up, side, new_stop=100.0, price=103.0) == pytest.approx(r_of(up, side, price=103.0))


def test_fees_and_slippage_are_paid_on_entry_and_every_market_fill() -> None:
    cfg = BacktestConfig(fee=0.001, slippage=0.0)
    assert r_of(bars(FLAT), close=1.0, cfg=cfg) == pytest.approx(-(0.1 + 0.1) / 5)
    got = r_of(bars((100, 106, 100.5, 104), (104, 111, 103, 110)), cfg=cfg)
    assert got == pytest.approx((0.5 * 5 + 0.5 * 10 - 0.1 - 0.5 * 0.105 - 0.5 * 0.11) / 5)
    slip = BacktestConfig(fee=0.0, slippage=0.001)
    assert r_of(bars(FLAT), close=1.0, cfg=slip) == pytest.approx(-0.1 / 5)  # market exit at t
    assert r_of(bars((100, 101, 94, 95)), cfg=slip) == pytest.approx((-5 - 0.095) / 5)  # stop is a market fill
    assert r_of(bars((100, 106, 100.5, 104), (104, 111, 103, 110)), cfg=slip) == pytest.approx(1.5)  # limits


def test_breached_stop_at_t_exits_on_the_next_open() -> None:
    assert r_of(bars((94, 95, 93, 94), FLAT), price=94.0) == pytest.approx(-1.2)
    assert r_of(bars((94, 95, 93, 94), FLAT), close=1.0, price=94.0) == pytest.approx(-1.2)


def test_no_stop_scenario_holds_to_time_exit() -> None:
    path = bars((100, 101, 80, 81), (81, 82, 79, 80))
    assert r_of(path, stop=NAN) == pytest.approx(-4.0)
    assert r_of(path, stop=NAN, new_stop=97.0) == pytest.approx(-0.6)


def test_candidates_cover_partials_and_stop_moves_and_mark_what_is_possible() -> None:
    p = pos(price=103.0)
    path = bars((103, 103.5, 99.5, 100), (100, 100.5, 94, 95), FLAT)
    r, avail = candidate_outcomes(p, path, CFG)
    labels = [c[0] for c in CANDIDATES]
    assert r.shape == (1, len(CANDIDATES)) and avail.all()
    assert r[0, labels.index("HOLD")] == pytest.approx(-1.0)
    assert r[0, labels.index("EXIT")] == pytest.approx(0.6)
    assert r[0, labels.index("PARTIAL 30%")] == pytest.approx(0.3 * 0.6 - 0.7)
    assert r[0, labels.index("STOP to breakeven")] == pytest.approx(0.0)
    assert best_of(r, avail)[0] == pytest.approx(0.6)
    # Not in profit: breakeven would sit above price, so it is not a candidate (and not in the best set).
    r2, avail2 = candidate_outcomes(pos(price=99.0), bars(FLAT), CFG)
    assert not avail2[0, labels.index("STOP to breakeven")]
    assert r2[0, labels.index("STOP to breakeven")] == r2[0, labels.index("HOLD")]


def test_best_set_is_every_class_with_a_candidate_within_tie() -> None:
    r = np.array([[0.0, 0.05, 0.11, 0.02, 0.3, -1.0]])
    avail = np.array([[True, True, True, True, False, True]])
    assert best_sets(r, avail, 0.1).tolist() == [[False, True, True, False]]  # 0.11 best; 0.05 and 0.02 tie
    assert best_sets(r, np.ones_like(avail), 0.1)[0].tolist() == [False, False, False, True]
    assert {HOLD, PARTIAL, EXIT, TIGHTEN} == {c[1] for c in CANDIDATES}


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


def _state(rows: list[tuple[float, float, float, float]], age: int) -> object:
    """The position entered at the close of bar 0 (long 100, stop 95, T1 105, T2 110), walked to bar `age`."""
    a = np.array(rows, dtype=np.float64).T
    ctx = SimpleNamespace(full=SimpleNamespace(open=a[0], high=a[1], low=a[2], close=a[3]))
    cfg = BacktestConfig(max_age=len(rows) - 1, min_age=1)
    one = lambda v: np.array([v])  # noqa: E731
    return state_at(ctx, cfg, one(0), one(age), one(1), one(100.0), one(95.0), one(105.0), one(110.0))  # type: ignore[arg-type]


def test_an_event_inside_bar_t_is_applied_to_the_state_at_t() -> None:
    rows = [FLAT, FLAT, (100, 106, 101, 104), FLAT]
    before = _state(rows, 1)
    at_t = _state(rows, 2)  # bar 2 = t touches T1: half taken, stop to breakeven, as of the close of t
    assert before.targets_hit[0] == 0 and before.stop[0] == 95.0  # type: ignore[attr-defined]
    assert at_t.targets_hit[0] == 1 and at_t.stop[0] == 100.0 and at_t.remaining[0] == 0.5  # type: ignore[attr-defined]


def test_a_position_stopped_inside_bar_t_is_flat_at_t() -> None:
    rows = [FLAT, FLAT, (100, 101, 94.5, 96), FLAT]
    assert _state(rows, 1).remaining[0] == 1.0  # type: ignore[attr-defined]
    assert _state(rows, 2).remaining[0] == 0.0  # type: ignore[attr-defined]
