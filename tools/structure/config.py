"""Tunable parameters of the structure engine, in one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field


def _default_sensitivities() -> tuple[tuple[int, int], ...]:
    # 16 (left, right) windows from tight to wide; right ~ 0.75 x left like the 20/15 main pivots.
    return tuple((left, max(2, round(0.75 * left))) for left in range(3, 19))


@dataclass(frozen=True, slots=True)
class StructureConfig:
    """Parameters of one analysis; the defaults implement SPEC section 4."""

    left: int = 20
    right: int = 15
    window: int = 1000  # the visible range, in bars, ending at `as_of`
    atr_period: int = 14
    atr_warmup: int = 200  # extra bars before the window fed to the ATR so it is settled
    level_tol_atr: float = 0.5  # pivots within this many ATRs form one level
    break_buffer_atr: float = 0.1  # a close this far beyond a level/trendline breaks it
    recent_break_bars: int = 5  # a break this recent is reported as a fresh break
    level_touch_atr: float = 0.25  # a bar within this many ATRs of a level's zone touches it
    level_react_atr: float = 1.0  # a touch is respected when price then moves this far away first
    level_min_touches: int = 2  # displayed levels need this many touches (fewer when a side has none)
    max_levels_per_side: int = 6
    max_stop_atr: float = 3.0  # a plan whose structural stop is farther than this is rejected
    min_rr_t1: float = 1.0  # a plan whose first target pays less than this many R is rejected
    trend_pivots: int = 12  # last N pivots of a kind considered for trendlines
    trend_touch_tol_atr: float = 0.25
    trend_min_gap: int = 5
    trend_long_span: int = 60  # bars between first and last touch worth one grade point
    max_trendlines_per_side: int = 3
    pressure_horizon: int = 50  # bars ahead in which trendline/level crossings are reported
    profile_bins: int = 250
    value_area: float = 0.70
    node_radius: int = 5  # bins on each side when finding HVN/LVN peaks and valleys
    max_nodes: int = 4
    sensitivities: tuple[tuple[int, int], ...] = field(default_factory=_default_sensitivities)
    autosupport_top: int = 8
    recent_pivots: int = 6


DEFAULT_CONFIG = StructureConfig()
