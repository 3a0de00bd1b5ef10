"""Execution guards, as pure functions of the account's state and the configured limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.risk.calibration import shipped_min_confidence
from engine.risk.decision import CLOSING_ACTIONS, STOP_ACTIONS, Decision

# What a hard rule's decision may do free of the discretionary limits: close, or place a stop (see exempt).
EXEMPT_ACTIONS = CLOSING_ACTIONS | STOP_ACTIONS


@dataclass(frozen=True)
class GuardLimits:
    """Limits of automated execution (built from the `BASTION_RISK__*` settings)."""

    max_close_pct: float = 50.0
    # On the calibrated scale (see guard_confidence); by default the one fitted with the shipped table.
    min_confidence: float = field(default_factory=shipped_min_confidence)
    max_actions_per_hour: int = 6
    daily_loss_limit_usd: float = 500.0


@dataclass(frozen=True)
class GuardState:
    """What the guards look at, read fresh right before each order."""

    mode: str
    armed: bool
    kill_switches: tuple[str, ...] = ()
    actions_last_hour: int = 0
    realised_pnl_today: float = 0.0


@dataclass(frozen=True)
class GuardVerdict:
    """Whether an order may go out, why not, and the close % it may use."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    close_pct: float | None = None


def exempt(decision: Decision) -> bool:
    """A hard rule's risk-reducing action: never held back by the close cap, confidence, hourly or daily limits."""
    # A hard-rule exit (breached stop, max loss, no stop at high leverage, near T1 with leverage) and the protective
    # stop auto mode places instead of a no-stop reduction (engine.monitor.policy.protective_stop) only lower the
    # risk; a stop move never loosens a stop (engine.risk.rules.validate_stop). Mode, arming and the kill switch
    # still hold them back.
    return decision.hard and decision.action in EXEMPT_ACTIONS


def guard_confidence(decision: Decision) -> tuple[float | None, str]:
    """The confidence the minimum is compared with, and its name in a refusal (None: the decision has none).

    The minimum is on the calibrated scale: the share of the time a decision was among the best in the backtest.
    A rules decision speaks it through `calibrated_confidence`; a model's decision (source model or merged) has no
    table, so its own `confidence` is used: the risk prompt asks the model for exactly that probability, and the
    backtest reports the model's calibration error beside the rules'. A rules decision without a calibrated figure
    (the table missing or turned off) has none: its own figure runs 0.6-1.0 where the measured one runs 0.1-0.6,
    so comparing it would let nearly every action through.
    """
    if decision.calibrated_confidence is not None:
        return decision.calibrated_confidence, "calibrated confidence"
    if decision.source == "rules":
        return None, "no calibrated confidence (the backtest table is missing)"
    return decision.confidence, "model confidence"


def check_automated(decision: Decision, state: GuardState, limits: GuardLimits) -> GuardVerdict:
    """Guards for an action the engine takes on its own (auto mode); the close % is capped, never raised."""
    reasons = []
    free = exempt(decision)
    if state.kill_switches:
        reasons.append(f"kill switch engaged ({', '.join(state.kill_switches)})")
    if state.mode != "auto":
        reasons.append(f"account mode is {state.mode}, not auto")
    if not state.armed:
        reasons.append("account is not armed (read-only)")
    if not free:
        confidence, what = guard_confidence(decision)
        if confidence is None:
            reasons.append(what)
        elif confidence < limits.min_confidence:
            reasons.append(f"{what} {confidence:.4g} below the minimum {limits.min_confidence:.4g}")
    if not free and state.actions_last_hour >= limits.max_actions_per_hour:
        reasons.append(
            f"{state.actions_last_hour} automated actions in the last hour (limit {limits.max_actions_per_hour})"
        )
    if not free and state.realised_pnl_today <= -limits.daily_loss_limit_usd:
        reasons.append(
            f"daily realised loss {-state.realised_pnl_today:.2f} reached the limit {limits.daily_loss_limit_usd:.2f}"
        )
    close_pct = None
    if decision.closes:
        cap = 100.0 if free else limits.max_close_pct
        close_pct = min(decision.effective_close_pct, cap)
    return GuardVerdict(allowed=not reasons, reasons=reasons, close_pct=close_pct)


def check_approved(state: GuardState, close_pct: float | None = None) -> GuardVerdict:
    """Guards for an action a person approved with a button: the account must be armed; the kill switch
    stops automated execution only, so it does not block a human's explicit confirmation."""
    if not state.armed:
        return GuardVerdict(False, ["the account is read-only: arm it first (`engine arm`)"])
    return GuardVerdict(True, [], close_pct)


# The guards as the executor applies them again at the claim, to the state read under the account's row lock.
Recheck = Callable[[GuardState], GuardVerdict]


class GuardRefused(Exception):
    """The guards, read again under the account's row lock at the claim, refuse the order."""

    def __init__(self, verdict: GuardVerdict) -> None:
        super().__init__("; ".join(verdict.reasons))
        self.verdict = verdict
