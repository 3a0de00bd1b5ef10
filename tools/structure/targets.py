"""Structural stop, T1/T2/T3 from opposing levels, take-profit shares from level strength, R:R."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, Field

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
    """Stop, targets and reward-to-risk of a long or short from an entry."""

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


def plan_trade(
    side: Side,
    entry: float,
    atr_value: float,
    levels: Sequence[LevelLike],
    k_atr: float = 1.5,
    buffer_atr: float = 0.2,
    min_stop_grade: int = 2,
    min_target_atr: float = 0.5,
) -> TradePlan:
    """Plan a trade: stop beyond the nearest level of grade >= `min_stop_grade` and >= k x ATR away.

    Targets are the next opposing levels at least `min_target_atr` ATRs away; missing ones are
    filled with 2R, 3R, ... beyond the last level target. Long and short are exact mirrors.
    """
    if atr_value <= 0 or entry <= 0:
        raise ValueError("entry and ATR must be positive")
    d = 1.0 if side == "long" else -1.0
    # Work in "distance in the trade's favour" so one code path serves both sides.
    behind = [(d * (entry - lv.price), lv) for lv in levels if d * (entry - lv.price) > 0]
    ahead = [(d * (lv.price - entry), lv) for lv in levels if d * (lv.price - entry) >= min_target_atr * atr_value]
    qualifying = [(dist, lv) for dist, lv in behind if lv.grade >= min_stop_grade]
    min_dist = k_atr * atr_value
    if qualifying:
        dist, lv = min(qualifying, key=lambda x: x[0])
        stop_dist = max(dist + buffer_atr * atr_value, min_dist)
        source: Literal["structure", "atr"] = "structure"
        stop_level: float | None = lv.price
    else:
        stop_dist, source, stop_level = min_dist, "atr", None
    stop = entry - d * stop_dist

    ahead.sort(key=lambda x: x[0])
    picks: list[tuple[float, Literal["level", "r_multiple"], int]] = [
        (dist, "level", lv.grade) for dist, lv in ahead[:3]
    ]
    mult = 2.0
    while len(picks) < 3:
        dist = mult * stop_dist
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
    )


def plan_from_report(
    report: StructureReport,
    side: Side,
    entry: float | None = None,
    k_atr: float = 1.5,
    buffer_atr: float = 0.2,
    min_stop_grade: int = 2,
    min_target_atr: float = 0.5,
) -> TradePlan:
    """`plan_trade` on a report's levels, entering at its close unless `entry` is given."""
    price = entry if entry is not None else report.close
    return plan_trade(side, price, report.atr, report.levels, k_atr, buffer_atr, min_stop_grade, min_target_atr)
