"""What the model must return: the risk decision, in a strict-mode compatible schema."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from inference.structured import strict_json_schema

RiskAction = Literal[
    "HOLD",
    "TP_PARTIAL",
    "TP_FULL",
    "EXIT_FULL",
    "EMERGENCY_EXIT",
    "REDUCE_SIZE",
    "MOVE_STOP_BE",
    "TRAIL_STOP",
    "ADJUST_STOP",
]
RISK_ACTIONS: tuple[str, ...] = get_args(RiskAction)
# Actions that are meaningless without a percentage to close or a price for the new stop.
NEEDS_CLOSE_PCT = frozenset({"TP_PARTIAL", "REDUCE_SIZE"})
NEEDS_NEW_STOP = frozenset({"TRAIL_STOP", "ADJUST_STOP"})


def _strict_schema(schema: dict[str, Any]) -> None:
    # Mutates in place: pydantic hands the generated schema to this hook.
    strict = strict_json_schema(schema)
    schema.clear()
    schema.update(strict)


class RiskDecisionOut(BaseModel):
    """The model's risk decision for one position, in the closed action vocabulary."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_strict_schema)

    action: RiskAction = Field(description="One of the closed risk actions.")
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in the action, 0 to 1.")
    reasoning: str = Field(min_length=1, max_length=2000, description="Why, citing the numbers given.")
    close_pct: float | None = Field(
        default=None, ge=0.0, le=100.0, description="Percent of the position to close (TP_PARTIAL, REDUCE_SIZE)."
    )
    new_stop: float | None = Field(
        default=None, gt=0.0, description="New stop price (TRAIL_STOP, ADJUST_STOP); null otherwise."
    )
    next_check_minutes: int | None = Field(
        default=None, ge=1, le=10_080, description="Minutes until the position should be evaluated again."
    )

    @model_validator(mode="after")
    def _action_arguments(self) -> RiskDecisionOut:
        if self.action in NEEDS_CLOSE_PCT and not self.close_pct:
            raise ValueError(f"{self.action} needs close_pct above 0")
        if self.action in NEEDS_NEW_STOP and self.new_stop is None:
            raise ValueError(f"{self.action} needs new_stop")
        return self
