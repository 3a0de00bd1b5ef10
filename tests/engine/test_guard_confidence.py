"""The execution guards' minimum is on the calibrated scale: each guard outcome on both sides of it, the model's own
confidence where no table measures it, the exempt hard rules, and the fitted default the settings ship."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bastion.app import guard_limits
from bastion.settings import RiskSettings, Settings
from engine.execution.guards import GuardLimits, GuardState, check_automated, exempt
from engine.monitor.policy import protective_stop
from engine.risk.calibration import CALIBRATION_FILE, shipped_min_confidence, shipped_table
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.decision import Decision
from engine.risk.evaluate import evaluate

NOW = datetime(2026, 3, 1, tzinfo=UTC)
MIN = 0.45
LIMITS = GuardLimits(max_close_pct=50.0, min_confidence=MIN, max_actions_per_hour=6, daily_loss_limit_usd=500.0)
README = Path(__file__).resolve().parents[2] / "README.md"
OK = GuardState(mode="auto", armed=True)
BUSY = GuardState(mode="auto", armed=True, actions_last_hour=99, realised_pnl_today=-10_000)


def rules_decision(calibrated: float | None, *, raw: float = 0.9, **extra: Any) -> Decision:
    """A rules decision closing 30%, with its own (raw) and calibrated confidence."""
    fields: dict[str, Any] = {"action": "REDUCE_SIZE", "close_pct": 30.0, "rule": "guarding_line"} | extra
    return Decision(confidence=raw, calibrated_confidence=calibrated, reasoning="test", **fields)


# (state, the reason it refuses with, or None)
STATES = [
    (OK, None),
    (GuardState(mode="auto", armed=True, kill_switches=("telegram:7",)), "kill switch engaged (telegram:7)"),
    (GuardState(mode="advise", armed=True), "account mode is advise, not auto"),
    (GuardState(mode="auto", armed=False), "account is not armed (read-only)"),
    (GuardState(mode="auto", armed=True, actions_last_hour=6), "6 automated actions in the last hour (limit 6)"),
    (GuardState(mode="auto", armed=True, actions_last_hour=5), None),
    (GuardState(mode="auto", armed=True, realised_pnl_today=-500.0), "daily realised loss 500.00 reached the limit"),
    (GuardState(mode="auto", armed=True, realised_pnl_today=-499.99), None),
]


@pytest.mark.parametrize(("state", "refusal"), STATES)
@pytest.mark.parametrize("calibrated", [MIN - 0.01, MIN, MIN + 0.2])
def test_each_guard_outcome_on_both_sides_of_the_minimum(
    state: GuardState, refusal: str | None, calibrated: float
) -> None:
    verdict = check_automated(rules_decision(calibrated, raw=0.95), state, LIMITS)
    expected = [refusal] if refusal else []
    if calibrated < MIN:
        expected.append(f"calibrated confidence {calibrated:.4g} below the minimum 0.45")
    assert len(verdict.reasons) == len(expected), verdict.reasons
    assert all(r.startswith(e) for r, e in zip(sorted(verdict.reasons), sorted(expected), strict=True))
    assert verdict.allowed is (not expected)
    assert verdict.close_pct == 30.0  # under the cap: never raised, never cut


def test_the_raw_confidence_no_longer_decides() -> None:
    # The rule says 0.95 but was among the best 40% of the time: refused; it says 0.3 but measured 0.6: allowed.
    assert not check_automated(rules_decision(0.40, raw=0.95), OK, LIMITS).allowed
    assert check_automated(rules_decision(0.60, raw=0.3), OK, LIMITS).allowed
    capped = check_automated(rules_decision(0.60, close_pct=80.0), OK, LIMITS)
    assert capped.allowed and capped.close_pct == 50.0


@pytest.mark.parametrize("source", ["model", "merged"])
def test_a_model_decision_is_held_to_its_own_confidence(source: str) -> None:
    # No table measures the model: its stated probability is compared (the backtest reports its calibration).
    model = Decision(action="EXIT_FULL", confidence=MIN, reasoning="m", rule="model", source=source)  # type: ignore[arg-type]
    assert check_automated(model, OK, LIMITS).allowed
    low = model.model_copy(update={"confidence": MIN - 0.01})
    assert check_automated(low, OK, LIMITS).reasons == ["model confidence 0.44 below the minimum 0.45"]


def test_a_rules_decision_without_a_calibrated_confidence_is_never_executed_automatically() -> None:
    # Its own figure is on another scale (0.6-1.0 where the measured one runs 0.1-0.6): it would let everything by.
    verdict = check_automated(rules_decision(None, raw=1.0), OK, GuardLimits(min_confidence=0.0))
    assert not verdict.allowed and verdict.reasons == ["no calibrated confidence (the backtest table is missing)"]


def ctx(price: float, **pos: Any) -> RiskContext:
    position: dict[str, Any] = {"symbol": "SOL/USDT:USDT", "side": "long", "entry": 100.0, "size": 10.0, "stop": 96.0}
    position |= pos
    return RiskContext(position=RiskPosition(**position), market=MarketView(price=price, atr=2.0, now=NOW))


# Protective hard rules, evaluated for real: (context, rule, action)
PROTECTIVE = [
    (ctx(95.9), "stop_breached", "EMERGENCY_EXIT"),
    (ctx(95.5, stop=90.0), "hard_max_loss", "EMERGENCY_EXIT"),
    (ctx(100.5, stop=None, leverage=20), "no_stop_20x", "EXIT_FULL"),  # liquidation risk: 20x without a stop
    (ctx(99.5, stop=None, leverage=10), "no_stop_10x", "EXIT_FULL"),
    (ctx(100.5, stop=None, leverage=10), "no_stop_10x", "REDUCE_SIZE"),
]


@pytest.mark.parametrize(("context", "rule", "action"), PROTECTIVE)
def test_protective_hard_rules_are_never_blocked_by_the_minimum(context: RiskContext, rule: str, action: str) -> None:
    decision = evaluate(context)
    assert (decision.rule, decision.action, decision.hard) == (rule, action, True)
    assert exempt(decision)
    strictest = GuardLimits(max_close_pct=10.0, min_confidence=1.0, max_actions_per_hour=0, daily_loss_limit_usd=0)
    verdict = check_automated(decision, BUSY, strictest)
    assert verdict.allowed, verdict.reasons
    assert verdict.close_pct == decision.effective_close_pct  # the close cap does not cut it either
    # Mode, arming and the kill switch still hold it back.
    killed = GuardState(mode="auto", armed=True, kill_switches=("global",))
    assert check_automated(decision, killed, strictest).reasons == ["kill switch engaged (global)"]
    assert not check_automated(decision, GuardState(mode="advise", armed=True), strictest).allowed


def test_the_protective_stop_auto_mode_places_is_exempt_and_a_plain_stop_move_is_not() -> None:
    reduce = evaluate(ctx(100.5, stop=None, leverage=5))
    stop = protective_stop(reduce)
    assert stop is not None and stop.action == "ADJUST_STOP" and exempt(stop)
    assert check_automated(stop, BUSY, GuardLimits(min_confidence=1.0, max_actions_per_hour=0)).allowed
    # Below 5x the stop is the rules' soft suggestion: the minimum governs it.
    soft = evaluate(ctx(100.5, stop=None, leverage=1))
    assert soft.action == "ADJUST_STOP" and not soft.hard and not exempt(soft)
    assert soft.calibrated_confidence is not None
    assert not check_automated(soft, OK, GuardLimits(min_confidence=soft.calibrated_confidence + 0.01)).allowed
    assert check_automated(soft, OK, GuardLimits(min_confidence=soft.calibrated_confidence)).allowed


def test_the_default_minimum_is_the_one_fitted_on_the_shipped_table() -> None:
    table = shipped_table()
    assert table is not None and table.guard is not None, f"no guard in {CALIBRATION_FILE}: run fit_calibration"
    fitted = table.guard.min_confidence
    # Fitted on this very table: every level it judged is a confidence the table gives.
    values = {*table.table.values(), table.default}
    assert table.guard.levels and all(lv.confidence in values for lv in table.guard.levels)
    assert fitted == 1.0 or fitted in values
    assert RiskSettings().min_confidence == GuardLimits().min_confidence == shipped_min_confidence() == fitted
    assert guard_limits(Settings()).min_confidence == fitted
    readme = README.read_text()
    row = re.search(r"^\| `BASTION_RISK__MIN_CONFIDENCE` \| `([0-9.]+)` \|", readme, re.M)
    assert row is not None and float(row.group(1)) == fitted  # the README's Configuration table says it
    page = re.search(r"\(`BASTION_RISK__MIN_CONFIDENCE`, default ([0-9.]+)\)", readme)
    assert page is not None and float(page.group(1)) == fitted  # and its risk page
