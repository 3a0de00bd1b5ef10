"""Calibrated confidence: the share of the time, measured in the backtest, that a decision of the rule that made it
was among the best in hindsight (within tie_r R of the oracle), reported with every rules decision.

The table is fitted on the earlier half of the shared BTC/ETH/SOL 1h candles and checked on the later half
(`python -m backtest.fit_calibration` writes it, see backtest/calibration.py); it ships in the package as
`confidence_calibration.json` and is read from disk, never from the network. A rule missing from the table (too
rare in the fit period) gets the table's overall accuracy, so every rules decision speaks one scale.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from pydantic import BaseModel, Field

from engine.risk.decision import Decision

CALIBRATION_FILE = Path(__file__).with_name("confidence_calibration.json")


class CalibrationBinOut(BaseModel):
    """Check-period scenarios whose calibrated confidence fell in [low, high)."""

    low: float
    high: float
    n: int
    mean_confidence: float | None
    accuracy: float | None


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

    def confidence(self, rule: str) -> float:
        """Calibrated confidence of a decision made by `rule`."""
        return self.table.get(rule, self.default)


@functools.cache
def shipped_table(path: Path = CALIBRATION_FILE) -> ConfidenceTable | None:
    """The table shipped with the package (None when the file is absent: the rules' own confidence is kept)."""
    if not path.is_file():
        return None
    return ConfidenceTable.model_validate(json.loads(path.read_text()))


def calibrate(decision: Decision, table: ConfidenceTable | None) -> Decision:
    """`decision` with its calibrated confidence set (a model's decision keeps none: the table measures rules).

    The rule's own `confidence` stays as it is: the execution guards' minimum (BASTION_RISK__MIN_CONFIDENCE) and the
    monitor's auto-mode policy are set on that scale; the calibrated figure is the measured probability.
    """
    if table is None or decision.source != "rules" or decision.calibrated_confidence is not None:
        return decision
    p = table.confidence(decision.rule)
    said = f"{decision.reasoning} Backtest: this rule's call was among the best {100 * p:.0f}% of the time."
    return decision.model_copy(update={"calibrated_confidence": p, "reasoning": said})
