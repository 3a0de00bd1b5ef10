"""Structural stop, T1/T2/T3 from opposing levels, take-profit shares from level strength, R:R, rejections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from tools.structure.config import DEFAULT_CONFIG
from tools.structure.render import fmt_price
from tools.structure.report import StructureReport

Side = Literal["long", "short"]

# Share of the position taken at T1/T2 by grade of the level in the way (SPEC: T1 30-50%, T2 30-40%);
# the rest rides to T3. A stronger level is more likely to reject price, so more is banked there.
T1_SHARE = {3: 50.0, 2: 40.0, 1: 30.0, 0: 30.0}
T2_SHARE = {3: 40.0, 2: 35.0, 1: 30.0, 0: 30.0}


class LevelLike(Protocol):
    """Anything with a price and a grade (LevelOut, LevelRef)."""

    @property
    def price(self) -> float: ...

    @property
    def grade(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LevelRef:
    """A bare level for planning."""

    price: float
    grade: int


class TargetOut(BaseModel):
    """One take-profit target."""

    name: str
    price: float
    source: Literal["level", "r_multiple"]
    grade: int = Field(description="grade of the level (0 for an R-multiple target)")
    take_pct: float
    rr: float


class TradePlan(BaseModel):
    """Stop, targets and reward-to-risk of a long or short from an entry; `rejected` with its reasons when bad."""

    side: Side
    entry: float
    stop: float
    stop_source: Literal["structure", "atr"]
    stop_level: float | None = None
    risk_per_unit: float
    risk_atr: float
    atr: float
    targets: list[TargetOut]
    rr_t1: float
    rr_weighted: float
    rejected: bool = False
    reasons: list[str] = Field(default_factory=list, description="why the setup is rejected, for people")

    @property
    def reason(self) -> str | None:
        """All rejection reasons in one sentence (None for a valid plan)."""
        return "; ".join(self.reasons) if self.reasons else None


def _holding(lv: LevelLike) -> bool:
    # Bare LevelRefs carry no state: they are taken as holding.
    return getattr(lv, "state", "holding") == "holding"


def _edge(lv: LevelLike, d: float) -> float:
    """The far edge of a level's zone seen from a trade on side `d` (a long's stop goes under the zone)."""
    lo, hi = getattr(lv, "zone_low", lv.price), getattr(lv, "zone_high", lv.price)
    return min(lo, lv.price) if d > 0 else max(hi, lv.price)


def plan_trade(
    side: Side,
    entry: float,
    atr_value: float,
    levels: Sequence[LevelLike],
    k_atr: float = 1.0,
    buffer_atr: float = 0.2,
    min_stop_grade: int = 2,
    min_target_atr: float = 0.5,
    max_stop_atr: float = DEFAULT_CONFIG.max_stop_atr,
    min_rr_t1: float = DEFAULT_CONFIG.min_rr_t1,
) -> TradePlan:
    """Plan a trade: stop beyond the nearest holding level of grade >= `min_stop_grade` behind the entry
    (at least `k_atr` ATRs away), targets at the next holding opposing levels at least `min_target_atr` ATRs
    away, missing ones filled with 2R, 3R, ... Long and short are exact mirrors.

    Rejected, with its reasons, when no such level is behind the entry (the stop is then a plain k x ATR
    one, shown but not to be taken), when the stop would be more than `max_stop_atr` ATRs away, or when
    T1 pays less than `min_rr_t1` R.
    """
    if atr_value <= 0 or entry <= 0:
        raise ValueError("entry and ATR must be positive")
    d = 1.0 if side == "long" else -1.0
    live = [lv for lv in levels if _holding(lv)]
    # Work in "distance in the trade's favour" so one code path serves both sides.
    behind = [(d * (entry - _edge(lv, d)), lv) for lv in live if d * (entry - lv.price) > 0]
    ahead = [(d * (lv.price - entry), lv) for lv in live if d * (lv.price - entry) >= min_target_atr * atr_value]
    qualifying = [(dist, lv) for dist, lv in behind if lv.grade >= min_stop_grade]
    min_dist = k_atr * atr_value
    reasons: list[str] = []
    if qualifying:
        dist, lv = min(qualifying, key=lambda x: x[0])
        stop_dist = max(dist + buffer_atr * atr_value, min_dist)
        source: Literal["structure", "atr"] = "structure"
        stop_level: float | None = lv.price
        if stop_dist > max_stop_atr * atr_value:
            reasons.append(
                f"the stop beyond the grade {lv.grade} level {fmt_price(lv.price)} would be "
                f"{stop_dist / atr_value:.1f} ATR away, beyond the {max_stop_atr:g} ATR cap"
            )
    else:
        stop_dist, source, stop_level = min_dist, "atr", None
        below = "below" if d > 0 else "above"
        reasons.append(f"no holding level of grade {min_stop_grade}+ {below} the entry to put the stop behind")
    stop = entry - d * stop_dist

    ahead.sort(key=lambda x: x[0])
    picks: list[tuple[float, Literal["level", "r_multiple"], int]] = [
        (dist, "level", lv.grade) for dist, lv in ahead[:3]
    ]
    mult = 2.0
    while len(picks) < 3:
        dist = mult * stop_dist
        if d < 0 and dist >= entry:
            # A short with a stop this wide has no 2R below zero: halve the way to zero (only rejected plans get here).
            dist = (picks[-1][0] + entry) / 2 if picks else entry / 2
        if not picks or dist > picks[-1][0]:
            picks.append((dist, "r_multiple", 0))
        mult += 1.0
    t1 = T1_SHARE[picks[0][2]]
    t2 = T2_SHARE[picks[1][2]]
    shares = [t1, t2, 100.0 - t1 - t2]
    targets = [
        TargetOut(
            name=f"T{i + 1}",
            price=entry + d * dist,
            source=src,
            grade=grade,
            take_pct=shares[i],
            rr=dist / stop_dist,
        )
        for i, (dist, src, grade) in enumerate(picks)
    ]
    if targets[0].rr < min_rr_t1:
        reasons.append(
            f"T1 {fmt_price(targets[0].price)} (the first level in the way) pays {targets[0].rr:.2f}R, "
            f"under {min_rr_t1:g}R"
        )
    return TradePlan(
        side=side,
        entry=entry,
        stop=stop,
        stop_source=source,
        stop_level=stop_level,
        risk_per_unit=stop_dist,
        risk_atr=stop_dist / atr_value,
        atr=atr_value,
        targets=targets,
        rr_t1=targets[0].rr,
        rr_weighted=sum(t.rr * t.take_pct / 100.0 for t in targets),
        rejected=bool(reasons),
        reasons=reasons,
    )


def plan_from_report(
    report: StructureReport,
    side: Side,
    entry: float | None = None,
    k_atr: float = 1.0,
    buffer_atr: float = 0.2,
    min_stop_grade: int = 2,
    min_target_atr: float = 0.5,
    max_stop_atr: float = DEFAULT_CONFIG.max_stop_atr,
    min_rr_t1: float = DEFAULT_CONFIG.min_rr_t1,
    price: float | None = None,
) -> TradePlan:
    """`plan_trade` on a report's levels from `entry`, else the live `price`, else (no live price known) the
    report's last close. Pass the live price: the last closed candle can be far from where price is now."""
    start = entry if entry is not None else price if price is not None else report.close
    return plan_trade(
        side,
        start,
        report.atr,
        report.levels,
        k_atr,
        buffer_atr,
        min_stop_grade,
        min_target_atr,
        max_stop_atr,
        min_rr_t1,
    )
