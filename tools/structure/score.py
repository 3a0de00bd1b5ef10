"""MCF score of a setup: four factors x 1-3 -> 4-12 with a band; missing inputs lower confidence.

Each factor turns its available inputs into votes (+1 for the trade, -1 against, 0 neutral);
mean vote >= 0.5 scores 3, >= 0 scores 2, below 0 scores 1. A factor with no input at all
scores 1 (it cannot support the setup) and is listed in `missing`; nothing is guessed.
Confidence = coverage (share of the 10 inputs present) x total / 12.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tools.structure.report import StructureReport
from tools.structure.targets import Side

Band = Literal["high", "medium", "low"]
N_INPUTS = 10  # structure + 3 order flow + 3 derivatives + 3 on-chain


class OrderFlowInputs(BaseModel):
    """Order-flow readings; None = not available."""

    cvd_divergence: Literal[-1, 0, 1] | None = Field(default=None, description="+1 bullish, -1 bearish divergence")
    volume_ratio: float | None = Field(default=None, description="recent volume / its average")
    book_imbalance: float | None = Field(default=None, ge=-1, le=1, description="(bid-ask)/(bid+ask) depth")


class DerivativesInputs(BaseModel):
    """Derivatives readings; None = not available."""

    funding_rate: float | None = Field(default=None, description="fraction per 8h, 0.0001 = 0.01%")
    oi_change_pct: float | None = None
    price_change_pct: float | None = Field(default=None, description="price change over the OI window; needed for OI")
    long_short_ratio: float | None = None


class OnChainInputs(BaseModel):
    """On-chain readings in USD; None = not available."""

    whale_net_flow: float | None = Field(default=None, description="+ = coins leaving exchanges / unknown->unknown")
    exchange_net_flow: float | None = Field(default=None, description="+ = net inflow to exchanges (bearish)")
    stablecoin_net_mint: float | None = Field(default=None, description="+ = mints exceed burns (bullish)")


class FactorScore(BaseModel):
    """One factor's score, its votes and what it lacked."""

    name: str
    score: int = Field(ge=1, le=3)
    votes: dict[str, int]
    missing: list[str]
    reason: str


class McfScore(BaseModel):
    """Total 4-12, band (10-12 high, 7-9 medium, 4-6 low = pass), coverage and confidence."""

    side: Side
    total: int = Field(ge=4, le=12)
    band: Band
    factors: list[FactorScore]
    coverage: float = Field(ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    missing: list[str]
    tradeable: bool


def band_of(total: int) -> Band:
    """SPEC bands: 10-12 high, 7-9 medium, 4-6 low."""
    return "high" if total >= 10 else "medium" if total >= 7 else "low"


def _sign(x: float, dead: float = 0.0) -> int:
    return 1 if x > dead else -1 if x < -dead else 0


def _factor(name: str, votes: dict[str, int | None]) -> FactorScore:
    have = {k: v for k, v in votes.items() if v is not None}
    missing = [k for k, v in votes.items() if v is None]
    if not have:
        return FactorScore(name=name, score=1, votes={}, missing=missing, reason="no data")
    mean = sum(have.values()) / len(have)
    score = 3 if mean >= 0.5 else 2 if mean >= 0 else 1
    return FactorScore(name=name, score=score, votes=have, missing=missing, reason=f"mean vote {mean:+.2f}")


def structure_factor(report: StructureReport, side: Side) -> FactorScore:
    """Grade and touches of the level the trade leans on, plus confluence within 0.5 ATR of it."""
    lv = (report.supports() if side == "long" else report.resistances())[:1]
    if not lv:
        return FactorScore(name="structure", score=1, votes={}, missing=[], reason="no level behind the entry")
    level = lv[0]
    tol = 0.5 * report.atr
    want = "support" if side == "long" else "resistance"
    lines = [ln for ln in report.trendlines if ln.kind == want and ln.state == "holding"]
    confluence = sum(abs(ln.value_now - level.price) <= tol for ln in lines)
    p = report.profile
    confluence += sum(abs(x - level.price) <= tol for x in (p.poc, p.vah, p.val, *p.hvn))
    confluence += sum(abs(z.price - level.price) <= tol and z.sensitivities >= 8 for z in report.auto_support)
    if level.grade >= 3 and confluence >= 1:
        score = 3
    elif level.grade >= 2 or confluence >= 1:
        score = 2
    else:
        score = 1
    return FactorScore(
        name="structure",
        score=score,
        votes={"grade": level.grade, "touches": level.touches, "confluence": confluence},
        missing=[],
        reason=f"level {level.price:.6g} grade {level.grade}, {level.touches} touches, {confluence} confluences",
    )


def mcf_score(
    report: StructureReport,
    side: Side,
    order_flow: OrderFlowInputs | None = None,
    derivatives: DerivativesInputs | None = None,
    onchain: OnChainInputs | None = None,
) -> McfScore:
    """Score a long or short setup on `report` with whatever other inputs are available."""
    d = 1 if side == "long" else -1
    of = order_flow or OrderFlowInputs()
    dv = derivatives or DerivativesInputs()
    oc = onchain or OnChainInputs()
    flow = _factor(
        "order_flow",
        {
            "cvd_divergence": None if of.cvd_divergence is None else d * of.cvd_divergence,
            # Volume confirms participation whichever way; thin volume argues against any setup.
            "volume_ratio": None
            if of.volume_ratio is None
            else (1 if of.volume_ratio >= 1.5 else -1 if of.volume_ratio <= 0.7 else 0),
            "book_imbalance": None if of.book_imbalance is None else d * _sign(of.book_imbalance, 0.1),
        },
    )
    oi_vote: int | None = None
    if dv.oi_change_pct is not None and dv.price_change_pct is not None:
        # Rising OI with price moving the trade's way = new money behind it; against it = fuel for the other side.
        oi_vote = d * _sign(dv.price_change_pct) if dv.oi_change_pct > 1.0 else 0
    deriv = _factor(
        "derivatives",
        {
            # Contrarian: crowded positioning (paid funding, lopsided accounts) argues against joining it.
            "funding_rate": None
            if dv.funding_rate is None
            else -d * (1 if dv.funding_rate > 0.0005 else -1 if dv.funding_rate < 0 else 0),
            "oi_direction": oi_vote,
            "long_short_ratio": None
            if dv.long_short_ratio is None
            else -d * (1 if dv.long_short_ratio > 1.5 else -1 if dv.long_short_ratio < 0.67 else 0),
        },
    )
    chain = _factor(
        "onchain",
        {
            "whale_flow": None if oc.whale_net_flow is None else d * _sign(oc.whale_net_flow),
            "exchange_flow": None if oc.exchange_net_flow is None else -d * _sign(oc.exchange_net_flow),
            "stablecoins": None if oc.stablecoin_net_mint is None else d * _sign(oc.stablecoin_net_mint),
        },
    )
    struct = structure_factor(report, side)
    factors = [struct, flow, deriv, chain]
    total = sum(f.score for f in factors)
    missing = [f"{f.name}.{m}" for f in factors for m in f.missing]
    present = 1 + sum(len(f.votes) for f in (flow, deriv, chain))
    coverage = present / N_INPUTS
    band = band_of(total)
    return McfScore(
        side=side,
        total=total,
        band=band,
        factors=factors,
        coverage=coverage,
        confidence=round(coverage * total / 12, 4),
        missing=missing,
        tradeable=band != "low",
    )
