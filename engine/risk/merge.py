"""Merge the model's opinion under the hard rules: the rules win on every hard rule; bad output is rejected."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from engine.risk.context import RiskContext
from engine.risk.decision import ACTIONS, CLOSING_ACTIONS, FULL_CLOSE_ACTIONS, Decision
from engine.risk.rules import validate_stop

DEFAULT_MODEL_CLOSE_PCT = 50.0


def check_model_output(ctx: RiskContext, raw: BaseModel | dict[str, Any]) -> tuple[Decision | None, str | None]:
    """Validate a model decision against the vocabulary and the position; (decision, None) or (None, why)."""
    data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw)
    action = data.get("action")
    if action not in ACTIONS:
        return None, f"unknown action {action!r}"
    confidence = data.get("confidence")
    if not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        return None, f"confidence {confidence!r} is not between 0 and 1"
    close_pct = data.get("close_pct")
    if close_pct is not None and not 0 < float(close_pct) <= 100:
        return None, f"close_pct {close_pct!r} is not in (0, 100]"
    new_stop = data.get("new_stop")
    if action in CLOSING_ACTIONS - FULL_CLOSE_ACTIONS:
        close_pct = float(close_pct) if close_pct is not None else DEFAULT_MODEL_CLOSE_PCT
    elif action in FULL_CLOSE_ACTIONS:
        close_pct = None
    if action == "MOVE_STOP_BE":
        new_stop = ctx.position.entry
    if action in {"MOVE_STOP_BE", "TRAIL_STOP", "ADJUST_STOP"}:
        if new_stop is None:  # MOVE_STOP_BE has the entry by now: only a trail or adjust can lack one
            return None, f"{action} without new_stop"
        problem = validate_stop(ctx.d, ctx.market.price, float(new_stop), ctx.position.stop)
        if problem:
            return None, f"{action} rejected: {problem}"
    else:
        new_stop = None
    try:
        decision = Decision(
            action=action,
            confidence=float(confidence),
            reasoning=str(data.get("reasoning") or "").strip() or "(no reasoning given)",
            close_pct=close_pct,
            new_stop=new_stop,
            next_check_minutes=data.get("next_check_minutes"),
            rule="model",
            source="model",
        )
    except ValidationError as exc:
        return None, f"invalid decision: {exc.errors()[0]['msg']}"
    return decision, None


def merge(
    ctx: RiskContext, rules: Decision, model: BaseModel | dict[str, Any] | None, model_error: str | None = None
) -> Decision:
    """The final decision: rules when a hard rule fired or the model failed, else the model's (validated) view."""
    if model is None:
        reason = model_error or "no model configured"
        return rules.model_copy(update={"notes": [*rules.notes, f"model not used: {reason}"]})
    proposal, problem = check_model_output(ctx, model)
    if proposal is None:
        return rules.model_copy(update={"notes": [*rules.notes, f"model output rejected: {problem}"]})
    if rules.hard:
        agree = "agrees" if proposal.action == rules.action else f"proposed {proposal.action}, overruled"
        return rules.model_copy(update={"notes": [*rules.notes, f"hard rule {rules.rule} stands; model {agree}"]})
    return proposal.model_copy(
        update={
            "source": "merged",
            "warnings": rules.warnings,
            "notes": [f"rules said {rules.action} ({rules.rule}); model said {proposal.action}"],
            "next_check_minutes": proposal.next_check_minutes or rules.next_check_minutes,
        }
    )
