"""A scan setup and the rules it must pass: confidence, timeframes agreeing, expected move, a plan to take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, Field

from engine.reports.confidence import view_confidence
from tools.structure.score import McfScore
from tools.structure.targets import Side, TradePlan


@dataclass(frozen=True)
class QualifyRules:
    """SPEC section 7 thresholds (and the structure engine's plan rules, applied by `plan_trade`)."""

    min_confidence: float = 0.65
    min_move_pct: float = 1.0  # distance from entry to T1, in % of the entry
    top: int = 5


class Setup(BaseModel):
    """One directional setup of a symbol on one timeframe, with why it does or does not qualify."""

    symbol: str
    timeframe: str
    side: Side
    entry: float
    stop: float
    targets: list[float]
    rr_t1: float
    expected_move_pct: float
    mcf_total: int
    mcf_band: str
    alignment: dict[str, int]
    alignment_score: float
    confidence: float = Field(ge=0, le=1)
    qualified: bool
    reasons: list[str] = Field(default_factory=list)

    def rank_key(self) -> tuple[float, ...]:
        """Higher first: MCF total, timeframe alignment the setup's way, confidence, then R:R at T1."""
        d = 1 if self.side == "long" else -1
        return (self.mcf_total, d * self.alignment_score, self.confidence, self.rr_t1)


def evaluate(
    symbol: str,
    timeframe: str,
    plan: TradePlan,
    score: McfScore,
    alignment: Mapping[str, int],
    rules: QualifyRules,
) -> Setup:
    """The setup of `plan` with its qualification verdict."""
    d = 1 if plan.side == "long" else -1
    t1 = plan.targets[0].price
    move = 100 * d * (t1 - plan.entry) / plan.entry
    confidence = view_confidence(alignment, score)
    reasons: list[str] = []
    if confidence < rules.min_confidence:
        reasons.append(f"confidence {100 * confidence:.0f}% under {100 * rules.min_confidence:.0f}%")
    against = [tf for tf, v in alignment.items() if v != d]
    if against:
        reasons.append(f"timeframes not agreeing with the {plan.side}: {', '.join(against)}")
    if move < rules.min_move_pct:
        reasons.append(f"expected move to T1 {move:.2f}% under {rules.min_move_pct:g}%")
    if not score.tradeable:
        reasons.append(f"MCF score {score.total}/12 is {score.band} (a pass)")
    reasons.extend(plan.reasons)
    score_align = sum(alignment.values()) / len(alignment) if alignment else 0.0
    return Setup(
        symbol=symbol,
        timeframe=timeframe,
        side=plan.side,
        entry=plan.entry,
        stop=plan.stop,
        targets=[t.price for t in plan.targets],
        rr_t1=plan.rr_t1,
        expected_move_pct=round(move, 3),
        mcf_total=score.total,
        mcf_band=score.band,
        alignment=dict(alignment),
        alignment_score=score_align,
        confidence=confidence,
        qualified=not reasons,
        reasons=reasons,
    )
