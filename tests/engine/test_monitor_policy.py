"""The monitor's pure policy: execute / propose / skip, once per condition, without I/O."""

from __future__ import annotations

from typing import Any

import pytest

from engine.monitor import policy
from engine.monitor.policy import Choice
from engine.risk.decision import Decision


def decision(action: str = "REDUCE_SIZE", rule: str = "structure_break_low_volume", **kw: Any) -> Decision:
    base: dict[str, Any] = {"confidence": 0.8, "reasoning": "because"}
    if action in {"REDUCE_SIZE", "TP_PARTIAL"}:
        base["close_pct"] = 50.0
    return Decision(action=action, rule=rule, **(base | kw))  # type: ignore[arg-type]


def test_hold_is_skipped() -> None:
    assert policy.choose(decision("HOLD", "hold"), auto=True, handled={}, size=10).choice is Choice.SKIP


@pytest.mark.parametrize(("auto", "choice"), [(True, Choice.EXECUTE), (False, Choice.PROPOSE)])
def test_a_new_condition_is_acted_on_and_a_handled_one_skipped(auto: bool, choice: Choice) -> None:
    d = decision(condition="level 99.5")
    step = policy.choose(d, auto=auto, handled={}, size=10)
    assert step.choice is choice and step.decision == d
    again = policy.choose(d, auto=auto, handled={step.key: "placed"}, size=6.7)
    assert again.choice is Choice.SKIP and again.key == step.key


@pytest.mark.parametrize("status", ["placed", "duplicate", "nothing_to_do"])
def test_nothing_follows_an_action_that_ran_or_needs_no_order(status: str) -> None:
    step = policy.choose(decision(), auto=True, handled={}, size=10)
    assert policy.after(step, status, handled={}, size=10) is None


@pytest.mark.parametrize("status", ["refused", "failed"])
def test_a_refused_or_failed_action_is_proposed(status: str) -> None:
    step = policy.choose(decision(), auto=True, handled={}, size=10)
    follow = policy.after(step, status, handled={step.key: status}, size=10)
    assert follow is not None and follow.choice is Choice.PROPOSE and follow.key == step.key


def test_auto_places_the_suggested_stop_instead_of_reducing() -> None:
    reduce = decision(rule="no_stop_5x", close_pct=33.0, hard=True, suggested_stop=97.5)
    step = policy.choose(reduce, auto=True, handled={}, size=10)
    assert step.choice is Choice.EXECUTE
    assert (step.decision.action, step.decision.new_stop, step.decision.close_pct) == ("ADJUST_STOP", 97.5, None)
    assert step.fallback == reduce
    # The suggestion moves with price; the protective stop is still one condition.
    moved = policy.choose(reduce.model_copy(update={"suggested_stop": 97.1}), auto=True, handled={}, size=10)
    assert moved.key == step.key
    # Refused: the reduction, once; the stop is not retried.
    fallback = policy.after(step, "failed", handled={step.key: "failed"}, size=10)
    assert fallback is not None and fallback.choice is Choice.EXECUTE and fallback.decision == reduce
    handled = {step.key: "failed", fallback.key: "placed"}
    assert policy.choose(reduce, auto=True, handled=handled, size=6.7).choice is Choice.SKIP
    # Advise mode proposes what the rule said.
    assert policy.choose(reduce, auto=False, handled={}, size=10).decision == reduce


def test_condition_keys() -> None:
    partial = decision("TP_PARTIAL", "take_profit", condition="T1")
    assert policy.condition_key(partial, 10) == policy.condition_key(partial, 6)  # its own fill is no new condition
    assert policy.condition_key(partial, 10) != policy.condition_key(partial.model_copy(update={"condition": "T2"}), 10)
    full = decision("EXIT_FULL", "failed_entry")
    assert policy.condition_key(full, 10) != policy.condition_key(full, 4)  # a remainder is closed again
    trail = decision("TRAIL_STOP", "trailing_stop", new_stop=103.0)
    assert policy.condition_key(trail, 10) != policy.condition_key(trail.model_copy(update={"new_stop": 104.0}), 10)


def test_intent_ids_come_from_position_state_never_the_clock() -> None:
    a = policy.intent_id(7, "SOL/USDT:USDT", "long", "e0@100", "no_stop_5x:REDUCE_SIZE")
    assert a == policy.intent_id(7, "SOL/USDT:USDT", "long", "e0@100", "no_stop_5x:REDUCE_SIZE")
    assert a != policy.intent_id(7, "SOL/USDT:USDT", "long", "e1@101", "no_stop_5x:REDUCE_SIZE")
    long_key = "model:TRAIL_STOP:" + "x" * 200
    assert len(policy.intent_id(7, "SOL/USDT:USDT", "long", "e0@100", long_key)) <= policy.INTENT_ID_MAX


def test_plan_effects() -> None:
    assert policy.plan_effects(decision("TP_PARTIAL", "take_profit")) == (True, None)
    assert policy.plan_effects(decision("TP_PARTIAL", "model")) == (False, None)
    assert policy.plan_effects(decision("MOVE_STOP_BE", "breakeven", new_stop=100.0)) == (False, 100.0)
