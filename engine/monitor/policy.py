"""The monitor's pure policy: for a decision on a position, execute, propose or skip, once per condition.

No I/O here: the monitor hands in the decision, the account mode, what the position's plan already handled
in its epoch and which actions await approval, and gets a Step back; after an execution it asks `after` what
follows the outcome. What is remembered (decisions, outcomes, alerts) is decided here too.

Auto mode executes every decision here and leaves the limits to the executor's guards (engine.execution.guards),
which read them fresh and again under the account's row lock: one place for the calibrated confidence minimum and
its exemptions. A refused action is remembered as refused and proposed once, so it is neither retried nor asked
again in later cycles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from engine.risk.decision import FULL_CLOSE_ACTIONS, STOP_ACTIONS, Decision

# Rules whose placed partial counts as a target taken (the next partial then aims at the next target).
TARGET_RULES = frozenset({"take_profit", "near_t1_leverage", "early_partial"})
PROTECTIVE_STOP = "protective stop"
INTENT_ID_MAX = 128  # executions.intent_id
PENDING = "an approval for this action is pending"
NO_PENDING: frozenset[str] = frozenset()


class Choice(StrEnum):
    """What the monitor does with a decision."""

    EXECUTE = "execute"
    PROPOSE = "propose"
    SKIP = "skip"


@dataclass(frozen=True)
class Step:
    """One thing to do for a position: the decision to carry out, its condition key, and why."""

    choice: Choice
    decision: Decision
    key: str
    why: str = ""
    fallback: Decision | None = None  # auto mode: what to place if this step is refused or fails


def condition_key(decision: Decision, size: float) -> str:
    """The condition a decision acts on, stable across cycles while the position's state is the same.

    Partial closes are keyed by rule, action and the rule's condition (a target, a level) only: the size they
    change must not make them a new condition. Full closes add the size, so a remainder left by a partial fill
    is closed again. Stop moves without a named condition are told apart by their new stop.
    """
    parts = [decision.rule, decision.action]
    if decision.condition:
        parts.append(decision.condition)
    elif decision.action in STOP_ACTIONS and decision.new_stop is not None:
        parts.append(f"stop {decision.new_stop:.10g}")
    if decision.action in FULL_CLOSE_ACTIONS:
        parts.append(f"size {size:.10g}")
    return ":".join(parts)


def protective_stop(decision: Decision) -> Decision | None:
    """Auto mode's answer to a no-stop reduction: place the suggested structural stop (once) instead."""
    if decision.action != "REDUCE_SIZE" or decision.suggested_stop is None:
        return None
    return decision.model_copy(
        update={
            "action": "ADJUST_STOP",
            "new_stop": decision.suggested_stop,
            "close_pct": None,
            "condition": PROTECTIVE_STOP,
            "reasoning": f"{decision.reasoning} Auto mode places the stop {decision.suggested_stop:g} instead.",
        }
    )


def choose(
    decision: Decision,
    *,
    auto: bool,
    handled: Mapping[str, str],
    size: float,
    pending: Collection[str] = NO_PENDING,
) -> Step:
    """Execute (auto) or propose (advise) a decision whose condition was not handled yet in this epoch; else skip.

    `pending`: the actions of the position's symbol that await approval; no second request is made for them.
    """
    if decision.action == "HOLD":
        return Step(Choice.SKIP, decision, "", "hold")
    if auto and (stop := protective_stop(decision)) is not None:
        key = condition_key(stop, size)
        if key not in handled:
            return Step(Choice.EXECUTE, stop, key, "a stop protects the whole position", fallback=decision)
    key = condition_key(decision, size)
    if key in handled:
        return Step(Choice.SKIP, decision, key, f"already {handled[key]}")
    if auto:
        return Step(Choice.EXECUTE, decision, key)
    return _propose(decision, key, "", pending)


def after(
    step: Step, status: str, *, handled: Mapping[str, str], size: float, pending: Collection[str] = NO_PENDING
) -> Step | None:
    """What follows an execution's outcome: nothing after placed, duplicate or nothing_to_do (the action ran or
    needs no order: a new approval would ask for what was already done); after refused or failed, the fallback
    once, else a proposal so the person knows and may approve by hand (unless one for the action pends)."""
    if status not in {"refused", "failed"}:
        return None
    if step.fallback is not None:
        key = condition_key(step.fallback, size)
        if key not in handled:
            return Step(Choice.EXECUTE, step.fallback, key, f"the stop was {status}")
    return _propose(step.decision, step.key, status, pending)


def _propose(decision: Decision, key: str, why: str, pending: Collection[str]) -> Step:
    """A proposal, or a skip while a request for the same action awaits its press (one question at a time)."""
    if decision.action in pending:
        return Step(Choice.SKIP, decision, key, PENDING)
    return Step(Choice.PROPOSE, decision, key, why)


def recorded_outcome(status: str) -> str | None:
    """How an execution outcome is remembered in the plan (None: not at all, e.g. nothing_to_do)."""
    return {"placed": "placed", "duplicate": "placed", "refused": "refused", "failed": "failed"}.get(status)


def plan_effects(decision: Decision) -> tuple[bool, float | None]:
    """What a placed decision changes in the plan: a target taken, and the stop the engine now watches."""
    target = decision.action == "TP_PARTIAL" and decision.rule in TARGET_RULES
    stop = decision.new_stop if decision.action in STOP_ACTIONS else None
    return target, stop


def keep_decision(decision: Decision, *, first: bool) -> bool:
    """Whether a decision is stored: a HOLD repeated every cycle carries no information, except on first sight."""
    return decision.action != "HOLD" or first


def alert_due(last: datetime | None, now: datetime, cooldown: timedelta) -> bool:
    """Whether an alert fires again: never sent, or last sent at least `cooldown` ago."""
    return last is None or now - last >= cooldown


def position_state(epoch: int, entry: float) -> str:
    """The position's state in intent ids: its epoch, and its entry (an epoch is never reused for another)."""
    return f"e{epoch}@{entry:.10g}"


def intent_id(account_id: int, symbol: str, side: str, state: str, key: str) -> str:
    """The automated order's intent id: account, symbol, side, position state and condition; never the clock."""
    text = f"auto:{account_id}:{symbol}:{side}:{state}:{key}"
    if len(text) <= INTENT_ID_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"auto:{account_id}:{symbol[:40]}:{side}:{digest}"
