"""Execution guards, as pure functions of the account's state and the configured limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.risk.decision import Decision


@dataclass(frozen=True)
class GuardLimits:
    """Limits of automated execution (built from the `BASTION_RISK__*` settings)."""

    max_close_pct: float = 50.0
    min_confidence: float = 0.7
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


def check_automated(decision: Decision, state: GuardState, limits: GuardLimits) -> GuardVerdict:
    """Guards for an action the engine takes on its own (auto mode); the close % is capped, never raised."""
    reasons = []
    # A hard-rule exit (breached stop, max loss, no stop at high leverage) reduces risk: the discretionary
    # limits (close cap, confidence, hourly count, daily loss) do not hold it back. Mode, arming and the
    # kill switch still do.
    exempt = decision.hard and decision.closes
    if state.kill_switches:
        reasons.append(f"kill switch engaged ({', '.join(state.kill_switches)})")
    if state.mode != "auto":
        reasons.append(f"account mode is {state.mode}, not auto")
    if not state.armed:
        reasons.append("account is not armed (read-only)")
    if not exempt and decision.confidence < limits.min_confidence:
        reasons.append(f"confidence {decision.confidence:.2f} below the minimum {limits.min_confidence:.2f}")
    if not exempt and state.actions_last_hour >= limits.max_actions_per_hour:
        reasons.append(
            f"{state.actions_last_hour} automated actions in the last hour (limit {limits.max_actions_per_hour})"
        )
    if not exempt and state.realised_pnl_today <= -limits.daily_loss_limit_usd:
        reasons.append(
            f"daily realised loss {-state.realised_pnl_today:.2f} reached the limit {limits.daily_loss_limit_usd:.2f}"
        )
    close_pct = None
    if decision.closes:
        cap = 100.0 if exempt else limits.max_close_pct
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
