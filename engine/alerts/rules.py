"""A user's own alert rule as a validated structure: conditions on metrics of one symbol, joined by and/or.

"tell me when BTC funding is above 0.05% while price holds above the 4h POC" becomes
`RuleSpec(symbol="BTC", join="and", conditions=[funding > 0.05, price > poc(4h)], cooldown_minutes=60)`.
The same model is the JSON schema a configured language model answers in, so both readers produce one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Metric = Literal["price", "funding", "oi_change", "volume_ratio", "change_24h"]
Comparator = Literal[">", ">=", "<", "<="]
Level = Literal["poc", "vah", "val"]
Timeframe = Literal["15m", "1h", "4h", "1d"]
Join = Literal["and", "or"]

METRIC_WORDS: dict[str, str] = {
    "price": "price",
    "funding": "funding",
    "oi_change": "open interest change over 4h",
    "volume_ratio": "volume",
    "change_24h": "24h change",
}
COMPARATOR_WORDS: dict[str, str] = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below"}
LEVEL_WORDS: dict[str, str] = {"poc": "POC", "vah": "value area high", "val": "value area low"}
# Plausible ranges: a threshold outside them is a typo, not a rule (funding in % per 8h, changes in %).
BOUNDS: dict[str, tuple[float, float]] = {
    "funding": (-5.0, 5.0),
    "oi_change": (-100.0, 1000.0),
    "volume_ratio": (0.0, 1000.0),
    "change_24h": (-100.0, 10_000.0),
}
MAX_CONDITIONS = 4
MIN_COOLDOWN, MAX_COOLDOWN = 5, 7 * 24 * 60
DEFAULT_COOLDOWN = 60


class RuleError(ValueError):
    """A rule that cannot be built or checked; the message says why, in words a user understands."""


class Condition(BaseModel):
    """One comparison: a metric against a number, or (for price) against a volume-profile level."""

    model_config = ConfigDict(extra="forbid")

    metric: Metric
    comparator: Comparator
    threshold: float | None = Field(default=None, description="Number compared with; funding and changes in %")
    level: Level | None = Field(default=None, description="Volume-profile level of `timeframe` (price only)")
    timeframe: Timeframe = Field(default="1h", description="Candles the level or the volume average come from")

    @model_validator(mode="after")
    def _one_side(self) -> Condition:
        if (self.threshold is None) == (self.level is None):
            raise ValueError("a condition compares with exactly one of a number or a level")
        if self.level is not None and self.metric != "price":
            raise ValueError("only price can be compared with a volume-profile level")
        if self.threshold is not None:
            if self.metric == "price" and self.threshold <= 0:
                raise ValueError("a price must be above 0")
            lo, hi = BOUNDS.get(self.metric, (float("-inf"), float("inf")))
            if not lo <= self.threshold <= hi:
                raise ValueError(f"{METRIC_WORDS[self.metric]} threshold {self.threshold:g} is out of range")
        return self

    def describe(self) -> str:
        """'funding above 0.05% per 8h', 'price above the 4h POC'."""
        what, cmp = METRIC_WORDS[self.metric], COMPARATOR_WORDS[self.comparator]
        if self.level is not None:
            return f"{what} {cmp} the {self.timeframe} {LEVEL_WORDS[self.level]}"
        t = self.threshold or 0.0
        value = {
            "funding": f"{t:g}% per 8h",
            "oi_change": f"{t:+g}%",
            "volume_ratio": f"{t:g}x its {self.timeframe} average",
            "change_24h": f"{t:+g}%",
        }.get(self.metric, f"{t:,.10g}")
        return f"{what} {cmp} {value}"

    def holds(self, readings: Mapping[str, float | None]) -> bool | None:
        """Whether the condition holds for the readings; None when a needed reading is missing."""
        left = readings.get(reading_key(self.metric, self.timeframe))
        right = self.threshold if self.level is None else readings.get(reading_key(self.level, self.timeframe))
        if left is None or right is None:
            return None
        return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[self.comparator]


def reading_key(name: str, timeframe: str) -> str:
    """Name of a reading: timeframe-bound ones (levels, volume) carry their timeframe."""
    return f"{name}:{timeframe}" if name in {"poc", "vah", "val", "volume_ratio"} else name


class RuleSpec(BaseModel):
    """A structured alert rule for one symbol."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(description="Base asset, e.g. BTC")
    conditions: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)
    join: Join = "and"
    cooldown_minutes: int = Field(default=DEFAULT_COOLDOWN, ge=MIN_COOLDOWN, le=MAX_COOLDOWN)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        base = v.strip().upper().split("/")[0]
        if not base.isalnum() or not 2 <= len(base) <= 20:
            raise ValueError(f"{v!r} is not a symbol")
        return base

    def describe(self) -> str:
        """The rule in plain words, as it is echoed back for confirmation and listed."""
        parts = [c.describe() for c in self.conditions]
        body = f" {self.join} ".join(parts)
        return f"{self.symbol}: {body}; at most once every {_duration(self.cooldown_minutes)}"

    def needs(self) -> set[str]:
        """The readings this rule compares."""
        out: set[str] = set()
        for c in self.conditions:
            out.add(reading_key(c.metric, c.timeframe))
            if c.level is not None:
                out.add(reading_key(c.level, c.timeframe))
        return out

    def holds(self, readings: Mapping[str, float | None]) -> bool:
        """True when the rule fires; a missing reading never makes it fire (an unknown 'and' part is false)."""
        results = [c.holds(readings) for c in self.conditions]
        if self.join == "and":
            return all(r is True for r in results)
        return any(r is True for r in results)


def _duration(minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return "day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"
