"""The report body: every section as data, so it can be stored, compared with the next one and rendered."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Bias = Literal["bullish", "bearish", "neutral"]
DEFAULT_SYMBOLS: tuple[str, ...] = ("BTC", "ETH", "SOL")
OPTIONAL_SYMBOLS: tuple[str, ...] = ("AVAX", "XRP", "DOGE", "LINK", "ADA", "POL")
REPORT_SYMBOLS: tuple[str, ...] = DEFAULT_SYMBOLS + OPTIONAL_SYMBOLS


class KeyLevel(BaseModel):
    """A holding level shown in the report."""

    price: float
    role: Literal["support", "resistance"]
    grade: int
    touches: int
    distance_atr: float


class Target(BaseModel):
    """One take-profit of a scenario."""

    name: str
    price: float
    rr: float


class Scenario(BaseModel):
    """A long or short plan from the structure engine, with its rejection reasons when it is not to be taken."""

    side: Literal["long", "short"]
    entry: float
    stop: float
    targets: list[Target]
    rr_t1: float
    rejected: bool
    reasons: list[str] = Field(default_factory=list)


class ProfileSummary(BaseModel):
    """Visible-range volume profile of the report's timeframe."""

    poc: float
    vah: float
    val: float
    value_area_share: float
    hvn: list[float]
    lvn: list[float]


class Derivatives(BaseModel):
    """Derivatives readings of the market data provider; None = not available there."""

    funding_pct_8h: float | None = None
    oi_change_pct: float | None = None
    oi_usd: float | None = None
    oi_window_hours: float | None = None
    long_short_ratio: float | None = None


class Whale(BaseModel):
    """On-chain context of a whale provider; `available` False when none is configured or it failed."""

    available: bool = False
    whale_net_flow_usd: float | None = None
    exchange_net_flow_usd: float | None = None
    stablecoin_net_mint_usd: float | None = None
    lean: Bias | None = None


class ReportBody(BaseModel):
    """The deterministic report of one symbol as of one closed candle of `timeframe`."""

    symbol: str
    timeframe: str
    as_of: datetime | None
    simulated: bool
    price: float
    close: float
    atr: float
    bias: Bias
    confidence: float = Field(ge=0, le=1)
    alignment: dict[str, int]
    levels: list[KeyLevel]
    scenarios: list[Scenario]
    profile: ProfileSummary
    derivatives: Derivatives
    whale: Whale
    changes: list[str] = Field(default_factory=list, description="what changed since the previous report")
    first_report: bool = True
    narrative: str | None = None
    narrative_dropped: list[str] = Field(default_factory=list, description="figures that failed the check")

    def resistances(self) -> list[KeyLevel]:
        """Resistances, nearest first."""
        return sorted((lv for lv in self.levels if lv.role == "resistance"), key=lambda lv: lv.price)

    def supports(self) -> list[KeyLevel]:
        """Supports, nearest first."""
        return sorted((lv for lv in self.levels if lv.role == "support"), key=lambda lv: -lv.price)
