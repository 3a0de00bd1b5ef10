"""Calibrated confidence: the share of the time, measured in the backtest, that a decision of the rule that made it
was among the best in hindsight (within tie_r R of the oracle), reported with every rules decision.

The table is fitted on the earlier half of the shared BTC/ETH/SOL 1h candles and checked on the later half
(`python -m backtest.fit_calibration` writes it, see backtest/calibration.py); it ships in the package as
`confidence_calibration.json` and is read from disk, never from the network. A rule missing from the table (too
rare in the fit period) gets the table's overall accuracy, so every rules decision speaks one scale.

The same command fits the execution guards' minimum on that scale (backtest/guard_threshold.py) and ships it in the
table's `guard` section: `BASTION_RISK__MIN_CONFIDENCE` defaults to it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from pydantic import BaseModel, Field

from engine.risk.decision import Decision

CALIBRATION_FILE = Path(__file__).with_name("confidence_calibration.json")
# The minimum where no fitted one ships: no decision the minimum governs is executed automatically (paranoid).
UNFITTED_MIN_CONFIDENCE = 1.0


class CalibrationBinOut(BaseModel):
    """Check-period scenarios whose calibrated confidence fell in [low, high)."""

    low: float
    high: float
    n: int
    mean_confidence: float | None
    accuracy: float | None


class Edge(BaseModel):
    """Governed rules decisions of one period: their R against HOLD and EXIT (clustered SE) and their accuracy."""

    n: int
    vs_hold: float | None = Field(description="Mean R of the decision minus HOLD's on the same scenarios")
    vs_hold_se: float | None
    vs_exit: float | None = Field(description="Mean R of the decision minus EXIT's on the same scenarios")
    vs_exit_se: float | None
    accuracy: float | None = Field(description="Share among the best in hindsight (within tie_r R of the oracle)")


class ThresholdLevel(Edge):
    """The fit period's governed decisions at one calibrated confidence, and whether they beat HOLD and EXIT."""

    confidence: float
    rules: list[str]
    beats: bool | None = Field(description="Beat both HOLD and EXIT by mean R (None: too few decisions to judge)")


class GuardThreshold(BaseModel):
    """The guards' minimum calibrated confidence, how it was chosen, and how it did on the later period."""

    min_confidence: float = Field(ge=0, le=1)
    procedure: str = Field(description="How min_confidence was chosen from the fit period")
    levels: list[ThresholdLevel] = Field(description="Fit period, each calibrated confidence level")
    fit_executed: Edge = Field(description="Fit period: governed decisions at or above the minimum")
    check_executed: Edge = Field(description="Check period: governed decisions at or above the minimum (auto acts)")
    check_left: Edge = Field(description="Check period: governed decisions below it (left to a person)")


class ConfidenceTable(BaseModel):
    """Rule -> calibrated confidence, with how it was produced and how it did on the later period."""

    table: dict[str, float] = Field(description="Rule -> share of its decisions among the best in the fit period")
    default: float = Field(ge=0, le=1, description="Overall fit-period accuracy: the confidence of any other rule")
    produced_by: str = Field(description="The command that wrote this table and the data it read")
    fit_n: int = 0
    check_n: int = 0
    raw_ece: float | None = Field(default=None, description="ECE of the rules' own confidence on the check period")
    ece: float | None = Field(default=None, description="ECE of the calibrated confidence on the check period")
    monotone: bool | None = Field(default=None, description="Check-period accuracy never falls as confidence rises")
    bins: list[CalibrationBinOut] = Field(default_factory=list, description="Check-period reliability bins")
    guard: GuardThreshold | None = Field(default=None, description="The execution guards' minimum on this scale")

    def confidence(self, rule: str) -> float:
        """Calibrated confidence of a decision made by `rule`."""
        return self.table.get(rule, self.default)


@functools.cache
def shipped_table(path: Path = CALIBRATION_FILE) -> ConfidenceTable | None:
    """The table shipped with the package (None when the file is absent: the rules' own confidence is kept)."""
    if not path.is_file():
        return None
    return ConfidenceTable.model_validate(json.loads(path.read_text()))


def shipped_min_confidence(path: Path = CALIBRATION_FILE) -> float:
    """The guards' minimum fitted with the shipped table (UNFITTED_MIN_CONFIDENCE where none was fitted)."""
    table = shipped_table(path)
    return table.guard.min_confidence if table is not None and table.guard is not None else UNFITTED_MIN_CONFIDENCE


def calibrate(decision: Decision, table: ConfidenceTable | None) -> Decision:
    """`decision` with its calibrated confidence set (a model's decision keeps none: the table measures rules).

    The rule's own `confidence` stays as it is (the backtest checks the calibration against it); the execution
    guards' minimum (BASTION_RISK__MIN_CONFIDENCE) compares the calibrated figure, the measured probability.
    """
    if table is None or decision.source != "rules" or decision.calibrated_confidence is not None:
        return decision
    p = table.confidence(decision.rule)
    said = f"{decision.reasoning} Backtest: this rule's call was among the best {100 * p:.0f}% of the time."
    return decision.model_copy(update={"calibrated_confidence": p, "reasoning": said})
