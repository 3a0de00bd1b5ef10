"""The decision vocabulary shared by the rules, the model and the executor."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from inference.schemas import RISK_ACTIONS, RiskAction

# One vocabulary for rules, model and executor: the model's schema defines it.
Action = RiskAction
ACTIONS: tuple[str, ...] = RISK_ACTIONS
CLOSING_ACTIONS = frozenset({"TP_PARTIAL", "TP_FULL", "EXIT_FULL", "EMERGENCY_EXIT", "REDUCE_SIZE"})
FULL_CLOSE_ACTIONS = frozenset({"TP_FULL", "EXIT_FULL", "EMERGENCY_EXIT"})
STOP_ACTIONS = frozenset({"MOVE_STOP_BE", "TRAIL_STOP", "ADJUST_STOP"})


class Decision(BaseModel):
    """What to do with one position now, why, and when to look again."""

    action: Action
    confidence: float = Field(ge=0, le=1)
    calibrated_confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="How often this rule's decision was among the best in the backtest (fitted early, checked late)",
    )
    reasoning: str
    close_pct: float | None = Field(default=None, gt=0, le=100)
    new_stop: float | None = Field(default=None, gt=0)
    next_check_minutes: int | None = Field(default=None, ge=1)
    rule: str = Field(description="Name of the rule (or 'model') that produced it")
    hard: bool = Field(default=False, description="From a hard rule: no model output may override it")
    source: Literal["rules", "model", "merged"] = "rules"
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="Why the model's opinion was or was not used")
    condition: str = Field(
        default="", description="What distinguishes this firing of the rule (a target, a level): one action each"
    )
    suggested_stop: float | None = Field(
        default=None, gt=0, description="The protective stop a position without one should get (no-stop rules)"
    )

    @property
    def closes(self) -> bool:
        """True when the action closes some or all of the position."""
        return self.action in CLOSING_ACTIONS

    @property
    def effective_close_pct(self) -> float:
        """Percent of the position this decision closes (100 for full exits, 0 for stop moves/holds)."""
        if self.action in FULL_CLOSE_ACTIONS:
            return 100.0
        return float(self.close_pct or 0.0) if self.closes else 0.0

    @property
    def protection(self) -> tuple[float, int]:
        """How protective the action is: the share it closes, then an emergency over a plain exit and a stop
        move over a hold. Comparing these is how 'the most protective decision wins' is decided."""
        return self.effective_close_pct, int(self.action == "EMERGENCY_EXIT" or self.action in STOP_ACTIONS)
