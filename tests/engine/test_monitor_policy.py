"""The monitor's pure policy: execute / propose / skip, once per condition, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


# --- tables: every branch of the policy, one row each ---------------------------------------------------------

NO_STOP = decision(rule="no_stop_5x", close_pct=33.0, hard=True, suggested_stop=97.5)
STOP_KEY = policy.condition_key(policy.protective_stop(NO_STOP) or NO_STOP, 10)
REDUCE_KEY = policy.condition_key(NO_STOP, 10)
BREAK = decision(condition="level 99.5")
BREAK_KEY = policy.condition_key(BREAK, 10)

# id: (decision, auto, handled, pending) → (choice, action carried out, key, why, fallback's action)
CHOOSE: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {
    "hold auto": ((decision("HOLD", "hold"), True, {}, set()), (Choice.SKIP, "HOLD", "", "hold", None)),
    "hold advise": ((decision("HOLD", "hold"), False, {}, {"HOLD"}), (Choice.SKIP, "HOLD", "", "hold", None)),
    "new auto": ((BREAK, True, {}, set()), (Choice.EXECUTE, "REDUCE_SIZE", BREAK_KEY, "", None)),
    "new advise": ((BREAK, False, {}, set()), (Choice.PROPOSE, "REDUCE_SIZE", BREAK_KEY, "", None)),
    "placed auto": ((BREAK, True, {BREAK_KEY: "placed"}, set()), (Choice.SKIP, "REDUCE_SIZE", BREAK_KEY,
                                                                    "already placed", None)),
    "refused auto": ((BREAK, True, {BREAK_KEY: "refused"}, set()), (Choice.SKIP, "REDUCE_SIZE", BREAK_KEY,
                                                                      "already refused", None)),
    "proposed advise": ((BREAK, False, {BREAK_KEY: "proposed"}, set()), (Choice.SKIP, "REDUCE_SIZE", BREAK_KEY,
                                                                           "already proposed", None)),
    "pending advise": ((BREAK, False, {}, {"REDUCE_SIZE"}), (Choice.SKIP, "REDUCE_SIZE", BREAK_KEY, policy.PENDING,
                                                             None)),
    "other pending advise": ((BREAK, False, {}, {"TRAIL_STOP"}), (Choice.PROPOSE, "REDUCE_SIZE", BREAK_KEY, "",
                                                                  None)),
    "pending auto": ((BREAK, True, {}, {"REDUCE_SIZE"}), (Choice.EXECUTE, "REDUCE_SIZE", BREAK_KEY, "", None)),
    "no stop auto": ((NO_STOP, True, {}, set()), (Choice.EXECUTE, "ADJUST_STOP", STOP_KEY,
                                                  "a stop protects the whole position", "REDUCE_SIZE")),
    "no stop auto, stop failed": ((NO_STOP, True, {STOP_KEY: "failed"}, set()), (Choice.EXECUTE, "REDUCE_SIZE",
                                                                                  REDUCE_KEY, "", None)),
    "no stop auto, both done": ((NO_STOP, True, {STOP_KEY: "failed", REDUCE_KEY: "placed"}, set()),
                                (Choice.SKIP, "REDUCE_SIZE", REDUCE_KEY, "already placed", None)),
    "no stop advise": ((NO_STOP, False, {}, set()), (Choice.PROPOSE, "REDUCE_SIZE", REDUCE_KEY, "", None)),
    "no stop advise, pending": ((NO_STOP, False, {}, {"REDUCE_SIZE"}), (Choice.SKIP, "REDUCE_SIZE", REDUCE_KEY,
                                                                        policy.PENDING, None)),
    "reduce without a suggested stop auto": ((decision(rule="no_stop_5x", hard=True), True, {}, set()),
                                             (Choice.EXECUTE, "REDUCE_SIZE", "no_stop_5x:REDUCE_SIZE", "", None)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CHOOSE))
def test_choose_table(case: str) -> None:
    (d, auto, handled, pending), (choice, action, key, why, fallback) = CHOOSE[case]
    step = policy.choose(d, auto=auto, handled=handled, size=10, pending=pending)
    assert (step.choice, step.decision.action, step.key, step.why) == (choice, action, key, why)
    assert (step.fallback.action if step.fallback else None) == fallback


STOP_STEP = policy.choose(NO_STOP, auto=True, handled={}, size=10)
BREAK_STEP = policy.choose(BREAK, auto=True, handled={}, size=10)

# id: (step, status, handled, pending) → None, or (choice, action carried out, key, why)
AFTER: dict[str, tuple[tuple[Any, ...], tuple[Any, ...] | None]] = {
    "placed": ((BREAK_STEP, "placed", {BREAK_KEY: "placed"}, set()), None),
    "duplicate": ((BREAK_STEP, "duplicate", {BREAK_KEY: "placed"}, set()), None),
    "nothing to do": ((BREAK_STEP, "nothing_to_do", {}, set()), None),
    "stop placed: no fallback": ((STOP_STEP, "placed", {STOP_KEY: "placed"}, set()), None),
    "stop nothing to do: no fallback": ((STOP_STEP, "nothing_to_do", {}, set()), None),
    "refused: proposed": ((BREAK_STEP, "refused", {BREAK_KEY: "refused"}, set()),
                          (Choice.PROPOSE, "REDUCE_SIZE", BREAK_KEY, "refused")),
    "failed: proposed": ((BREAK_STEP, "failed", {BREAK_KEY: "failed"}, set()),
                         (Choice.PROPOSE, "REDUCE_SIZE", BREAK_KEY, "failed")),
    "refused, pending: skipped": ((BREAK_STEP, "refused", {BREAK_KEY: "refused"}, {"REDUCE_SIZE"}),
                                  (Choice.SKIP, "REDUCE_SIZE", BREAK_KEY, policy.PENDING)),
    "stop refused: the fallback": ((STOP_STEP, "refused", {STOP_KEY: "refused"}, set()),
                                   (Choice.EXECUTE, "REDUCE_SIZE", REDUCE_KEY, "the stop was refused")),
    "stop failed: the fallback, pending or not": ((STOP_STEP, "failed", {STOP_KEY: "failed"}, {"REDUCE_SIZE"}),
                                                  (Choice.EXECUTE, "REDUCE_SIZE", REDUCE_KEY, "the stop was failed")),
    "stop failed, fallback handled: the stop proposed": (
        (STOP_STEP, "failed", {STOP_KEY: "failed", REDUCE_KEY: "placed"}, set()),
        (Choice.PROPOSE, "ADJUST_STOP", STOP_KEY, "failed")),
    "stop failed, fallback handled, stop pending": (
        (STOP_STEP, "failed", {STOP_KEY: "failed", REDUCE_KEY: "placed"}, {"ADJUST_STOP"}),
        (Choice.SKIP, "ADJUST_STOP", STOP_KEY, policy.PENDING)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(AFTER))
def test_after_table(case: str) -> None:
    (step, status, handled, pending), expected = AFTER[case]
    follow = policy.after(step, status, handled=handled, size=10, pending=pending)
    if expected is None:
        assert follow is None
    else:
        assert follow is not None
        assert (follow.choice, follow.decision.action, follow.key, follow.why) == expected
        assert follow.fallback is None  # a fallback is tried once: it has none of its own


@pytest.mark.parametrize(
    ("status", "recorded"),
    [("placed", "placed"), ("duplicate", "placed"), ("refused", "refused"), ("failed", "failed"),
     ("nothing_to_do", None), ("pending", None)],
)  # fmt: skip
def test_recorded_outcome_table(status: str, recorded: str | None) -> None:
    assert policy.recorded_outcome(status) == recorded


@pytest.mark.parametrize(
    ("d", "effects"),
    [
        (decision("TP_PARTIAL", "take_profit"), (True, None)),
        (decision("TP_PARTIAL", "near_t1_leverage"), (True, None)),
        (decision("TP_PARTIAL", "early_partial"), (True, None)),
        (decision("TP_PARTIAL", "model"), (False, None)),
        (decision("TP_FULL", "take_profit_final"), (False, None)),
        (decision("REDUCE_SIZE", "take_profit"), (False, None)),
        (decision("MOVE_STOP_BE", "breakeven", new_stop=100.0), (False, 100.0)),
        (decision("TRAIL_STOP", "trailing_stop", new_stop=104.5), (False, 104.5)),
        (decision("ADJUST_STOP", "no_stop_5x", new_stop=97.5), (False, 97.5)),
        (decision("EXIT_FULL", "hard_stop", new_stop=97.5), (False, None)),
    ],
)
def test_plan_effects_table(d: Decision, effects: tuple[bool, float | None]) -> None:
    assert policy.plan_effects(d) == effects


@pytest.mark.parametrize(
    ("d", "size", "key"),
    [
        (decision("TP_PARTIAL", "take_profit", condition="T2"), 6.0, "take_profit:TP_PARTIAL:T2"),
        (decision("REDUCE_SIZE", "no_stop_5x"), 10.0, "no_stop_5x:REDUCE_SIZE"),
        (decision("TRAIL_STOP", "trailing_stop", new_stop=103.25), 10.0, "trailing_stop:TRAIL_STOP:stop 103.25"),
        (
            decision("ADJUST_STOP", "x", new_stop=97.5, condition="protective stop"),
            10.0,
            "x:ADJUST_STOP:protective stop",
        ),
        (decision("MOVE_STOP_BE", "breakeven"), 10.0, "breakeven:MOVE_STOP_BE"),
        (decision("EXIT_FULL", "failed_entry"), 3.3, "failed_entry:EXIT_FULL:size 3.3"),
        (decision("TP_FULL", "take_profit_final", condition="T3"), 2.0, "take_profit_final:TP_FULL:T3:size 2"),
        (decision("EMERGENCY_EXIT", "hard_stop"), 1 / 3, "hard_stop:EMERGENCY_EXIT:size 0.3333333333"),
    ],
)
def test_condition_key_table(d: Decision, size: float, key: str) -> None:
    assert policy.condition_key(d, size) == key


@pytest.mark.parametrize(
    ("action", "first", "kept"), [("HOLD", True, True), ("HOLD", False, False), ("TRAIL_STOP", False, True)]
)
def test_keep_decision_table(action: str, first: bool, kept: bool) -> None:
    d = decision(action, "r", new_stop=100.0) if action != "HOLD" else decision("HOLD", "hold")
    assert policy.keep_decision(d, first=first) is kept


@pytest.mark.parametrize(
    ("ago", "due"),
    [(None, True), (timedelta(0), False), (timedelta(minutes=59, seconds=59), False), (timedelta(hours=1), True),
     (timedelta(hours=3), True)],
)  # fmt: skip
def test_alert_due_table(ago: timedelta | None, due: bool) -> None:
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert policy.alert_due(None if ago is None else now - ago, now, timedelta(hours=1)) is due


@pytest.mark.parametrize(
    ("epoch", "entry", "state"),
    [(0, 100.0, "e0@100"), (3, 2.109375, "e3@2.109375"), (1, 123456.789012, "e1@123456.789")],
)
def test_position_state_table(epoch: int, entry: float, state: str) -> None:
    assert policy.position_state(epoch, entry) == state


HOLD = decision("HOLD", "hold")
T1 = decision("TP_PARTIAL", "take_profit", condition="T1")


def _no_stop_until_placed(handled: dict[str, str]) -> Decision:
    return HOLD if handled.get(STOP_KEY) == "placed" else NO_STOP  # a placed stop quiets the no-stop rule


# id: (what the rules decide each cycle, auto, the executor's answer per action) → what was done, in order
TEN_CYCLES: dict[str, tuple[tuple[Any, ...], list[tuple[str, str]]]] = {
    "auto break": ((BREAK, True, {}), [("placed", "REDUCE_SIZE")]),
    "advise break": ((BREAK, False, {}), [("proposed", "REDUCE_SIZE")]),
    "auto break refused": ((BREAK, True, {"REDUCE_SIZE": "refused"}), [("refused", "REDUCE_SIZE"),
                                                                       ("proposed", "REDUCE_SIZE")]),
    "auto T1 duplicate": ((T1, True, {"TP_PARTIAL": "duplicate"}), [("duplicate", "TP_PARTIAL")]),
    "auto no stop": ((_no_stop_until_placed, True, {}), [("placed", "ADJUST_STOP")]),
    "auto no stop, stop fails": ((NO_STOP, True, {"ADJUST_STOP": "failed"}), [("failed", "ADJUST_STOP"),
                                                                              ("placed", "REDUCE_SIZE")]),
    "auto no stop, both fail": ((NO_STOP, True, {"ADJUST_STOP": "failed", "REDUCE_SIZE": "refused"}),
                                [("failed", "ADJUST_STOP"), ("refused", "REDUCE_SIZE"), ("proposed", "REDUCE_SIZE")]),
    "advise no stop": ((NO_STOP, False, {}), [("proposed", "REDUCE_SIZE")]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(TEN_CYCLES))
def test_ten_cycles_of_the_policy_act_once_per_condition(case: str) -> None:
    """The monitor's loop over the policy for ten cycles, what each cycle handled fed back: once per condition."""
    (decide, auto, answers), expected = TEN_CYCLES[case]
    handled: dict[str, str] = {}
    done: list[tuple[str, str]] = []
    for _ in range(10):
        d = decide(handled) if callable(decide) else decide
        step: policy.Step | None = policy.choose(d, auto=auto, handled=handled, size=10)
        while step is not None and step.choice is Choice.EXECUTE:
            status = answers.get(step.decision.action, "placed")
            done.append((status, step.decision.action))
            if (recorded := policy.recorded_outcome(status)) is not None:
                handled[step.key] = recorded
            step = policy.after(step, status, handled=handled, size=10)
        if step is not None and step.choice is Choice.PROPOSE:
            done.append(("proposed", step.decision.action))
            handled[step.key] = "proposed"
    assert done == expected
