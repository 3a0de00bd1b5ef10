"""Table tests for every rule and hard rule; long/short mirror symmetry (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.risk import rules
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.evaluate import evaluate, triggered
from engine.risk.merge import merge
from engine.risk.rules import validate_stop
from tests.engine.structure_fixtures import level, pivot, report

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def ctx(
    price: float,
    *,
    atr: float = 2.0,
    structure: Any = None,
    volume_ratio: float | None = None,
    close: float | None = None,
    **pos: Any,
) -> RiskContext:
    position = {"symbol": "SOL/USDT:USDT", "side": "long", "entry": 100.0, "size": 10.0, "stop": 96.0} | pos
    return RiskContext(
        position=RiskPosition(**position),
        market=MarketView(price=price, close=close, atr=atr, structure=structure, volume_ratio=volume_ratio, now=NOW),
    )


# (name, context, expected action, expected rule)
CASES = [
    ("stop breached long", ctx(95.9), "EMERGENCY_EXIT", "stop_breached"),
    ("stop touched exactly", ctx(96.0), "EMERGENCY_EXIT", "stop_breached"),
    ("stop breached short", ctx(104.1, side="short", stop=104.0), "EMERGENCY_EXIT", "stop_breached"),
    ("max loss without stop", ctx(95.9, stop=None, leverage=2), "EMERGENCY_EXIT", "hard_max_loss"),
    ("max loss with a far stop", ctx(95.5, stop=90.0), "EMERGENCY_EXIT", "hard_max_loss"),
    ("no stop 1x gets a stop", ctx(100.5, stop=None, leverage=1), "ADJUST_STOP", "no_stop_set_stop"),
    ("no stop 3x warns and gets a stop", ctx(100.5, stop=None, leverage=3), "ADJUST_STOP", "no_stop_set_stop"),
    ("no stop 5x reduces", ctx(100.5, stop=None, leverage=5), "REDUCE_SIZE", "no_stop_5x"),
    ("no stop 10x in profit reduces", ctx(100.5, stop=None, leverage=10), "REDUCE_SIZE", "no_stop_10x"),
    ("no stop 10x in loss exits", ctx(99.5, stop=None, leverage=10), "EXIT_FULL", "no_stop_10x"),
    ("no stop 20x exits", ctx(100.5, stop=None, leverage=20), "EXIT_FULL", "no_stop_20x"),
    ("no stop 50x exits", ctx(100.5, stop=None, leverage=50), "EXIT_FULL", "no_stop_20x"),
    (
        "near T1 at 5x takes partial",
        ctx(107.6, leverage=5, stop=80.0, targets=[108.0, 112.0]),
        "TP_PARTIAL",
        "near_t1_leverage",
    ),
    (
        "near T1 at 5x and 0.5R: the larger partial wins",
        ctx(107.6, leverage=5, targets=[108.0, 112.0]),
        "TP_PARTIAL",
        "early_partial",
    ),
    ("T1 reached takes partial", ctx(108.1, targets=[108.0, 112.0, 120.0]), "TP_PARTIAL", "take_profit"),
    (
        "last target closes",
        ctx(120.5, targets=[108.0, 112.0, 120.0], targets_hit=2, stop=110.0),
        "TP_FULL",
        "take_profit_final",
    ),
    ("in profit 1R+ trails", ctx(106.0, targets=[104.0, 120.0], targets_hit=1), "TRAIL_STOP", "trailing_stop"),
    ("in profit 1R+ before T1: banking beats trailing", ctx(106.0, targets=[120.0]), "TP_PARTIAL", "early_partial"),
    (
        "1R but trail behind entry: breakeven",
        ctx(104.5, atr=4.0, stop=99.0, initial_stop=96.0, targets=[103.0, 130.0], targets_hit=1),
        "MOVE_STOP_BE",
        "breakeven",
    ),
    (
        "after T1 the stop goes to breakeven",
        ctx(102.0, targets=[101.0, 130.0], targets_hit=1),
        "MOVE_STOP_BE",
        "breakeven",
    ),
    ("time exit swing", ctx(100.5, opened_at=NOW - timedelta(days=15)), "EXIT_FULL", "time_exit"),
    ("time exit scalp", ctx(100.5, style="scalp", opened_at=NOW - timedelta(hours=25)), "EXIT_FULL", "time_exit"),
    ("scalp within time holds", ctx(100.5, style="scalp", opened_at=NOW - timedelta(hours=5)), "HOLD", "hold"),
    ("quiet market holds", ctx(101.0, targets=[110.0]), "HOLD", "hold"),
    (
        "failed entry: no stop, 0.5 ATR against, no target yet",
        ctx(98.9, stop=None, targets=[110.0]),
        "EXIT_FULL",
        "failed_entry",
    ),
    ("a stop the trader set is respected: no failed entry", ctx(98.9, targets=[110.0]), "HOLD", "hold"),
    (
        "after T1 a pullback is not a failed entry",
        ctx(98.9, targets=[100.5, 110.0], targets_hit=1, stop=98.0),
        "HOLD",
        "hold",
    ),
    ("0.5R before T1 banks half", ctx(102.2, targets=[110.0]), "TP_PARTIAL", "early_partial"),
    (
        "safety net: grade 3 broken down with volume",
        ctx(99.0, structure=report(major_breaks=[level(99.5, 3, "resistance", broken="down")]), volume_ratio=2.1),
        "EXIT_FULL",
        "safety_net",
    ),
    (
        "grade 3 break without volume reduces",
        ctx(99.2, structure=report(major_breaks=[level(99.5, 3, "resistance", broken="down")]), volume_ratio=0.8),
        "REDUCE_SIZE",
        "structure_break_low_volume",
    ),
    (
        "a low-volume break never softens a failed entry's exit",
        ctx(
            99.0,
            stop=None,
            structure=report(major_breaks=[level(99.5, 3, "resistance", broken="down")]),
            volume_ratio=0.8,
        ),
        "EXIT_FULL",
        "failed_entry",
    ),
    (
        "a break in the position's favour is ignored",
        ctx(101.0, structure=report(major_breaks=[level(100.5, 3, "support", broken="up")]), volume_ratio=3.0),
        "HOLD",
        "hold",
    ),
    (
        "guarding line lost",
        ctx(98.4, close=98.4, structure=report(pivots=[pivot(98.5, "low", 95)])),
        "EXIT_FULL",
        "guarding_line",
    ),
    (
        "guarding line moves the stop",
        ctx(103.0, targets=[102.0, 120.0], targets_hit=1, structure=report(pivots=[pivot(100.5, "low", 95)])),
        "TRAIL_STOP",
        "guarding_line_trail",
    ),
]


@pytest.mark.parametrize(("name", "context", "action", "rule"), CASES, ids=[c[0] for c in CASES])
def test_rule_table(name: str, context: RiskContext, action: str, rule: str) -> None:
    decision = evaluate(context)
    assert (decision.action, decision.rule) == (action, rule), decision.reasoning
    assert decision.reasoning and decision.next_check_minutes


def test_hard_rules_are_marked_hard() -> None:
    for context in (ctx(95.0), ctx(100.5, stop=None, leverage=20), ctx(107.6, leverage=5, targets=[108.0])):
        assert evaluate(context).hard


def test_no_stop_3x_warns_and_sets_the_suggested_stop() -> None:
    decision = evaluate(ctx(100.0, stop=None, leverage=3))
    assert decision.action == "ADJUST_STOP" and decision.new_stop == decision.suggested_stop == 97.0
    assert decision.warnings and "Set a stop, e.g. 97" in decision.warnings[0]
    # With the stop in place the no-stop rule is quiet: it acts once.
    assert evaluate(ctx(100.0, stop=97.0, leverage=3)).action == "HOLD"


def test_reasoning_cites_the_numbers() -> None:
    decision = evaluate(ctx(95.5))
    assert "96" in decision.reasoning and "95.5" in decision.reasoning


def test_funding_is_never_a_reason_to_exit() -> None:
    calm = ctx(101.0, targets=[110.0])
    extreme = calm.model_copy(update={"market": calm.market.model_copy(update={"funding_rate": 0.01})})
    assert evaluate(extreme).action == evaluate(calm).action == "HOLD"


def test_trail_is_slower_in_hvn_and_faster_in_lvn() -> None:
    base = rules.trailing_stop(ctx(106.0, targets=[120.0]))
    hvn = rules.trailing_stop(ctx(106.0, targets=[120.0], structure=report(close=106.0, hvn=[106.0])))
    lvn = rules.trailing_stop(ctx(106.0, targets=[120.0], structure=report(close=106.0, lvn=[106.0])))
    assert base and hvn and lvn
    assert hvn.new_stop < base.new_stop < lvn.new_stop  # type: ignore[operator]
    assert base.new_stop == pytest.approx(106.0 - 1.5 * 2.0)


def test_take_profit_share_follows_level_grade() -> None:
    strong = ctx(108.1, targets=[108.0, 115.0], structure=report(levels=[level(108.2, 3, "resistance")]))
    weak = ctx(108.1, targets=[108.0, 115.0], structure=report(levels=[level(108.2, 1, "resistance")]))
    assert evaluate(strong).close_pct == 50.0 and evaluate(weak).close_pct == 30.0


def test_stops_are_never_loosened_or_on_the_wrong_side() -> None:
    assert validate_stop(1, 100.0, 95.0, 94.0) is None
    assert "below the price" in (validate_stop(1, 100.0, 101.0, None) or "")
    assert "above the price" in (validate_stop(-1, 100.0, 99.0, None) or "")
    assert "loosen" in (validate_stop(1, 100.0, 93.0, 94.0) or "")
    assert "loosen" in (validate_stop(-1, 100.0, 107.0, 106.0) or "")


def test_triggered_lists_rules_in_priority_order() -> None:
    names = [d.rule for d in triggered(ctx(95.0, leverage=20, stop=96.0))]
    assert names[:2] == ["stop_breached", "hard_max_loss"]


# --- mirror symmetry -------------------------------------------------------------------------------

CENTER = 1000.0


def mirror(p: float) -> float:
    return 2 * CENTER - p


@settings(max_examples=300, deadline=None)
@given(
    entry=st.floats(800, 1200),
    stop_dist=st.floats(5, 80) | st.none(),
    move=st.floats(-150, 150),
    atr=st.floats(2, 40),
    leverage=st.sampled_from([1, 2, 3, 5, 10, 20, 25]),
    t_dists=st.lists(st.floats(5, 150), min_size=0, max_size=3),
    targets_hit=st.integers(0, 3),
    held_h=st.floats(0, 500),
)
def test_long_and_short_are_mirrors(
    entry: float,
    stop_dist: float | None,
    move: float,
    atr: float,
    leverage: int,
    t_dists: list[float],
    targets_hit: int,
    held_h: float,
) -> None:
    a, b = (evaluate(c) for c in _contexts(entry, stop_dist, move, atr, leverage, t_dists, targets_hit, held_h))
    assert (a.action, a.rule, a.close_pct, a.hard) == (b.action, b.rule, b.close_pct, b.hard)
    if a.new_stop is None:
        assert b.new_stop is None
    else:
        assert b.new_stop == pytest.approx(mirror(a.new_stop), abs=1e-6)


# --- the most protective decision wins --------------------------------------------------------------

LEVERAGES = (1, 3, 5, 10, 20)


@pytest.mark.parametrize("leverage", LEVERAGES)
def test_losing_short_without_stop_exits_at_every_leverage(leverage: int) -> None:
    # 0.6 ATR against a short: the failed entry exits; at 5x the no-stop tier (reduce a third) used to win.
    decision = evaluate(ctx(101.2, side="short", stop=None, leverage=leverage))
    assert decision.action == "EXIT_FULL", (leverage, decision.rule, decision.reasoning)
    assert decision.hard is (leverage >= 5)  # a hard rule fired: the exit may not be softened by a model


def test_a_hard_floor_survives_the_model() -> None:
    context = ctx(101.2, side="short", stop=None, leverage=5)
    decision = evaluate(context)
    merged = merge(context, decision, {"action": "HOLD", "confidence": 0.9, "reasoning": "looks fine"})
    assert (merged.action, merged.rule) == ("EXIT_FULL", decision.rule)


def _contexts(
    entry: float,
    stop_dist: float | None,
    move: float,
    atr: float,
    leverage: int,
    t_dists: list[float],
    targets_hit: int,
    held_h: float,
) -> tuple[RiskContext, RiskContext]:
    """A long and its mirrored short."""
    targets = [entry + sum(t_dists[: i + 1]) for i in range(len(t_dists))]
    targets_hit = min(targets_hit, len(targets))
    long_pos = dict(
        side="long",
        entry=entry,
        stop=None if stop_dist is None else entry - stop_dist,
        leverage=leverage,
        targets=targets,
        targets_hit=targets_hit,
        opened_at=NOW - timedelta(hours=held_h),
    )
    short_pos = dict(
        long_pos,
        side="short",
        entry=mirror(entry),
        targets=[mirror(t) for t in targets],
        stop=None if stop_dist is None else mirror(entry - stop_dist),
    )
    return ctx(entry + move, atr=atr, **long_pos), ctx(mirror(entry + move), atr=atr, **short_pos)


@settings(max_examples=300, deadline=None)
@given(
    entry=st.floats(800, 1200),
    stop_dist=st.floats(5, 80) | st.none(),
    move=st.floats(-150, 150),
    atr=st.floats(2, 40),
    t_dists=st.lists(st.floats(5, 150), min_size=0, max_size=3),
    targets_hit=st.integers(0, 3),
    held_h=st.floats(0, 500),
)
def test_more_leverage_never_softens_and_no_fired_rule_is_stronger(
    entry: float,
    stop_dist: float | None,
    move: float,
    atr: float,
    t_dists: list[float],
    targets_hit: int,
    held_h: float,
) -> None:
    for side in (0, 1):
        previous: tuple[float, int] | None = None
        for leverage in LEVERAGES:
            context = _contexts(entry, stop_dist, move, atr, leverage, t_dists, targets_hit, held_h)[side]
            decision = evaluate(context)
            fired = [d.protection for d in triggered(context)]
            assert all(decision.protection >= p for p in fired), (leverage, decision.rule, triggered(context))
            if previous is not None:
                assert decision.protection >= previous, (leverage, decision.action, decision.rule)
            previous = decision.protection
