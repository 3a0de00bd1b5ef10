"""`StructureReport`: the one boundary model of the structure engine consumed downstream."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["support", "resistance"]
State = Literal["holding", "broken"]
BreakDirection = Literal["up", "down"]
Direction = Literal["long", "short"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PivotOut(_Frozen):
    """A swing pivot with the bar it happened at and the bar it was confirmed at."""

    bar: int
    confirmed_at: int
    time: datetime | None = None
    price: float
    kind: Literal["high", "low"]


class LevelOut(_Frozen):
    """A horizontal level; bars are indices into the analysed frame."""

    price: float
    zone_low: float
    zone_high: float
    touches: int
    highs: int
    lows: int
    first_touch: int
    last_touch: int
    last_touch_time: datetime | None = None
    confirmed_at: int
    grade: int = Field(ge=1, le=3)
    role: Role
    state: State
    broken_at: int | None = None
    break_direction: BreakDirection | None = None
    distance_atr: float = Field(description="(price - close) / ATR; negative below price")
    reactions: int = Field(default=0, description="touches followed by a move of 1 ATR away before a close beyond")
    respect: float = Field(default=0.0, description="share of decided touches that were respected (smoothed)")
    volume_ratio: float = Field(default=1.0, description="volume of touch bars / mean volume of the range")
    strength: float = Field(default=0.0, description="score the grade is cut from")
    node_atr: float | None = Field(
        default=None, description="distance to the nearest high-volume node of the profile, in ATRs (None: unknown)"
    )


class TrendlineOut(_Frozen):
    """A trendline through swing pivots; value = anchor_price + slope * (bar - anchor_bar)."""

    kind: Role
    anchor_bar: int
    anchor_price: float
    slope: float
    touches: int
    first_touch: int
    last_touch: int
    confirmed_at: int
    span: int
    grade: int = Field(ge=1, le=4)
    state: State
    broken_at: int | None = None
    value_now: float

    def value_at(self, bar: float) -> float:
        """Line price at a bar of the frame (fractional and future bars allowed)."""
        return self.anchor_price + self.slope * (bar - self.anchor_bar)


class PressurePointOut(_Frozen):
    """A trendline meeting a horizontal level `bars_ahead` bars after the analysed bar."""

    bars_ahead: float
    price: float
    trendline_kind: Role
    trendline_grade: int
    level_grade: int


class ProfileOut(_Frozen):
    """Visible-range volume profile; `volume`/`buy`/`sell` are per bin from `low` to `high`."""

    bins: int
    low: float
    high: float
    poc: float
    vah: float
    val: float
    value_area_share: float
    total_volume: float
    buy_volume: float
    sell_volume: float
    hvn: list[float]
    lvn: list[float]
    volume: list[float]
    buy: list[float]
    sell: list[float]

    @property
    def bin_width(self) -> float:
        """Price width of one bin."""
        return (self.high - self.low) / self.bins


class SupportZoneOut(_Frozen):
    """An auto-support zone: agreement of the 16-sensitivity scan and its priority rank."""

    price: float
    zone_low: float
    zone_high: float
    sensitivities: int = Field(ge=1, le=16)
    touches: int
    last_touch: int
    score: float
    rank: int
    role: Role


class StructureReport(_Frozen):
    """Market structure of one symbol and timeframe as of one closed bar (no later data used)."""

    symbol: str
    timeframe: str
    as_of: int = Field(description="Index of the analysed bar in the frame")
    as_of_time: datetime | None = None
    window_start: int
    bars: int
    close: float
    atr: float
    trend: int = Field(ge=-1, le=1, description="+1 HH/HL, -1 LH/LL, 0 mixed (confirmed pivots)")
    bias: int = Field(ge=-1, le=1, description="trend, or position vs the value area when trend is 0")
    levels: list[LevelOut]
    major_breaks: list[LevelOut] = Field(description="Grade 3 levels broken in the last few bars")
    trendlines: list[TrendlineOut]
    pressure_points: list[PressurePointOut]
    profile: ProfileOut
    auto_support: list[SupportZoneOut]
    recent_pivots: list[PivotOut]

    def supports(self) -> list[LevelOut]:
        """Support levels, nearest first."""
        return sorted((lv for lv in self.levels if lv.role == "support"), key=lambda lv: -lv.price)

    def resistances(self) -> list[LevelOut]:
        """Resistance levels, nearest first."""
        return sorted((lv for lv in self.levels if lv.role == "resistance"), key=lambda lv: lv.price)

    def compact(self) -> str:
        """Terse rendering for model prompts (about 350 tokens)."""
        from tools.structure.render import render_compact

        return render_compact(self)

    def human(self) -> str:
        """Readable multi-line rendering for people."""
        from tools.structure.render import render_human

        return render_human(self)


class MultiTimeframeReport(_Frozen):
    """Reports of several timeframes with the alignment vector (+1 bullish, -1 bearish, 0 neutral)."""

    symbol: str
    reports: dict[str, StructureReport]
    alignment: dict[str, int]
    alignment_score: float = Field(ge=-1, le=1, description="mean of the alignment vector")
    direction: Direction | None = Field(description="set only when all timeframes agree")
    missing: list[str] = Field(default_factory=list, description="timeframes that could not be analysed")

    def compact(self) -> str:
        """Terse rendering of every timeframe plus alignment."""
        from tools.structure.render import render_mtf_compact

        return render_mtf_compact(self)
