"""Single-timeframe analysis: bars up to `as_of` in, `StructureReport` out. No I/O, no lookahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import numpy as np
import pandas as pd

from tools.indicators import atr_last
from tools.structure.autosupport import auto_support
from tools.structure.config import DEFAULT_CONFIG, StructureConfig
from tools.structure.levels import Level, LevelTable, level_table
from tools.structure.pivots import HIGH, Pivots, find_pivots, market_trend
from tools.structure.profile import VolumeProfile, profile_hvn, volume_profile
from tools.structure.report import (
    LevelOut,
    PivotOut,
    PressurePointOut,
    ProfileOut,
    StructureReport,
    SupportZoneOut,
    TrendlineOut,
)
from tools.structure.trendlines import detect_trendlines, pressure_points


def atr_as_of(high: np.ndarray, low: np.ndarray, close: np.ndarray, as_of: int, cfg: StructureConfig) -> float:
    """ATR at `as_of`, fed from a start that depends only on `as_of` (so replays reproduce it)."""
    a0 = max(0, as_of - cfg.window - cfg.atr_warmup + 1)
    val = atr_last(high[a0 : as_of + 1], low[a0 : as_of + 1], close[a0 : as_of + 1], cfg.atr_period)
    if np.isfinite(val) and val > 0:
        return float(val)
    # Too few bars for ATR: the mean range is the honest stand-in (never zero).
    rng = float(np.mean(high[a0 : as_of + 1] - low[a0 : as_of + 1]))
    return rng if rng > 0 else max(abs(float(close[as_of])) * 1e-4, 1e-12)


def window_pivots(high: np.ndarray, low: np.ndarray, as_of: int, window_start: int, cfg: StructureConfig) -> Pivots:
    """Pivots inside the window, confirmed <= `as_of` (computed on the smallest slice that decides them)."""
    p0 = max(0, window_start - cfg.left)
    piv = find_pivots(high[p0 : as_of + 1], low[p0 : as_of + 1], cfg.left, cfg.right).shifted(p0)
    return piv.select(piv.bar >= window_start)


def window_profile(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    as_of: int,
    window_start: int,
    cfg: StructureConfig = DEFAULT_CONFIG,
) -> VolumeProfile:
    """Volume profile of the visible range `window_start`..`as_of`."""
    sl = slice(window_start, as_of + 1)
    return volume_profile(
        high[sl], low[sl], close[sl], volume[sl], cfg.profile_bins, cfg.value_area, cfg.node_radius, cfg.max_nodes
    )


def window_nodes(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    as_of: int,
    window_start: int,
    cfg: StructureConfig = DEFAULT_CONFIG,
) -> list[float]:
    """The high-volume nodes of `window_profile` alone (what the level grades read of it), by price."""
    sl = slice(window_start, as_of + 1)
    return profile_hvn(high[sl], low[sl], close[sl], volume[sl], cfg.profile_bins, cfg.node_radius, cfg.max_nodes)


def level_pass(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray | None,
    as_of: int,
    atr_value: float,
    piv: Pivots,
    window_start: int,
    cfg: StructureConfig = DEFAULT_CONFIG,
    ref_price: float | None = None,
    profile: VolumeProfile | None = None,
) -> LevelTable:
    """Every level as of `as_of` (as arrays): the one level pass shared by analysis, backtest and quality checks.

    With volumes, the grades use the high-volume nodes of the visible range's profile (`profile`'s, else computed).
    """
    nodes = None
    if profile is not None:
        nodes = np.asarray(profile.hvn, dtype=np.float64)
    elif volume is not None:
        nodes = np.asarray(window_nodes(high, low, close, volume, as_of, window_start, cfg), dtype=np.float64)
    return level_table(
        piv,
        close,
        as_of,
        atr_value,
        cfg.level_tol_atr,
        cfg.break_buffer_atr,
        high=high,
        low=low,
        volume=volume,
        start=window_start,
        touch_tol_atr=cfg.level_touch_atr,
        react_atr=cfg.level_react_atr,
        window=cfg.window,
        ref_price=ref_price,
        nodes=nodes,
    )


def shown_rows(table: LevelTable, cfg: StructureConfig = DEFAULT_CONFIG) -> np.ndarray:
    """Rows of the levels the analysis displays (the nearest holding ones each side of the pass' price)."""
    return table.shown(table.ref, cfg.max_levels_per_side, cfg.level_min_touches)


def levels_as_of(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray | None,
    as_of: int,
    atr_value: float,
    piv: Pivots,
    window_start: int,
    cfg: StructureConfig = DEFAULT_CONFIG,
    ref_price: float | None = None,
    profile: VolumeProfile | None = None,
) -> tuple[list[Level], list[Level]]:
    """(every level, the displayed ones) as of `as_of` (level_pass as Level objects)."""
    table = level_pass(high, low, close, volume, as_of, atr_value, piv, window_start, cfg, ref_price, profile)
    return table.levels(), table.levels(shown_rows(table, cfg))


def _bias(trend: int, close: float, prof: VolumeProfile) -> int:
    """Trend decides; when mixed, acceptance above the value area is bullish, below it bearish."""
    if trend:
        return trend
    return 1 if close > prof.vah else -1 if close < prof.val else 0


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


Times: TypeAlias = pd.DatetimeIndex | np.ndarray  # bar open times: an index, or epoch milliseconds (int64)


def _time(times: Times | None, bar: int) -> datetime | None:
    if times is None:
        return None
    if isinstance(times, np.ndarray):
        return _EPOCH + timedelta(milliseconds=int(times[bar]))
    per_us = _US_PER_UNIT.get(getattr(times, "unit", ""))
    if times.tz is UTC and per_us is not None:
        # Epoch arithmetic: pandas' boxing of one Timestamp costs more than the rest of a level's output.
        return _EPOCH + timedelta(microseconds=int(times.asi8[bar]) * per_us)
    return times[bar].to_pydatetime()


def _level_out(lv: Level, close: float, atr_value: float, times: Times | None) -> LevelOut:
    return LevelOut(
        price=lv.price,
        zone_low=lv.zone_low,
        zone_high=lv.zone_high,
        touches=lv.touches,
        highs=lv.highs,
        lows=lv.lows,
        first_touch=lv.first_touch,
        last_touch=lv.last_touch,
        last_touch_time=_time(times, lv.last_touch),
        confirmed_at=lv.confirmed_at,
        grade=lv.grade,
        role=lv.role,
        state=lv.state,
        broken_at=lv.broken_at,
        break_direction=lv.break_direction,
        distance_atr=(lv.price - close) / atr_value,
        reactions=lv.reactions,
        respect=lv.respect,
        volume_ratio=lv.volume_ratio,
        strength=lv.strength,
        node_atr=lv.node_atr,
    )


def analyze_arrays(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    as_of: int,
    symbol: str = "",
    timeframe: str = "",
    times: Times | None = None,
    config: StructureConfig = DEFAULT_CONFIG,
) -> StructureReport:
    """Full structure analysis of bar `as_of` from float64 arrays; only bars <= `as_of` are read. `times`: the
    bars' open times (a UTC DatetimeIndex, or epoch ms), for the report's timestamps."""
    cfg = config
    if not 0 <= as_of < len(close):
        raise ValueError(f"as_of {as_of} outside the {len(close)} bars given")
    ws = max(0, as_of - cfg.window + 1)
    a = atr_as_of(high, low, close, as_of, cfg)
    c = float(close[as_of])
    piv = window_pivots(high, low, as_of, ws, cfg)

    prof = window_profile(high, low, close, volume, as_of, ws, cfg)
    table = level_pass(high, low, close, volume, as_of, a, piv, ws, cfg, profile=prof)
    shown = table.levels(shown_rows(table, cfg))
    breaks = table.levels(table.major_breaks(as_of, cfg.recent_break_bars))
    lines = detect_trendlines(
        piv,
        close,
        as_of,
        a,
        cfg.trend_pivots,
        cfg.trend_touch_tol_atr,
        cfg.break_buffer_atr,
        cfg.trend_min_gap,
        cfg.trend_long_span,
        cfg.max_trendlines_per_side,
    )
    pp = pressure_points(
        lines,
        np.array([lv.price for lv in shown]),
        np.array([lv.grade for lv in shown], dtype=np.int64),
        as_of,
        cfg.pressure_horizon,
    )
    zones = auto_support(high, low, close, as_of, ws, a, cfg.sensitivities, cfg.level_tol_atr, cfg.autosupport_top)
    trend = market_trend(piv)
    recent = [
        PivotOut(
            bar=int(piv.bar[i]),
            confirmed_at=int(piv.confirmed[i]),
            time=_time(times, int(piv.bar[i])),
            price=float(piv.price[i]),
            kind="high" if piv.kind[i] == HIGH else "low",
        )
        for i in range(max(0, len(piv) - cfg.recent_pivots), len(piv))
    ]
    total = prof.total
    return StructureReport(
        symbol=symbol,
        timeframe=timeframe,
        as_of=as_of,
        as_of_time=_time(times, as_of),
        window_start=ws,
        bars=as_of - ws + 1,
        close=c,
        atr=a,
        trend=trend,
        bias=_bias(trend, c, prof),
        levels=[_level_out(lv, c, a, times) for lv in shown],
        major_breaks=[_level_out(lv, c, a, times) for lv in breaks],
        trendlines=[
            TrendlineOut(
                kind=ln.kind,
                anchor_bar=ln.anchor_bar,
                anchor_price=ln.anchor_price,
                slope=ln.slope,
                touches=ln.touches,
                first_touch=ln.first_touch,
                last_touch=ln.last_touch,
                confirmed_at=ln.confirmed_at,
                span=ln.span,
                grade=ln.grade,
                state=ln.state,
                broken_at=ln.broken_at,
                value_now=ln.value_at_as_of,
            )
            for ln in lines
        ],
        pressure_points=[
            PressurePointOut(
                bars_ahead=p.bars_ahead,
                price=p.price,
                trendline_kind=p.trendline_kind,
                trendline_grade=p.trendline_grade,
                level_grade=p.level_grade,
            )
            for p in pp
        ],
        profile=ProfileOut(
            bins=len(prof.volume),
            low=float(prof.edges[0]),
            high=float(prof.edges[-1]),
            poc=prof.poc,
            vah=prof.vah,
            val=prof.val,
            value_area_share=prof.value_area_volume / total if total > 0 else 0.0,
            total_volume=total,
            buy_volume=float(prof.buy.sum()),
            sell_volume=float(prof.sell.sum()),
            hvn=list(prof.hvn),
            lvn=list(prof.lvn),
            volume=prof.volume.tolist(),
            buy=prof.buy.tolist(),
            sell=prof.sell.tolist(),
        ),
        auto_support=[
            SupportZoneOut(
                price=z.price,
                zone_low=z.zone_low,
                zone_high=z.zone_high,
                sensitivities=z.sensitivities,
                touches=z.touches,
                last_touch=z.last_touch,
                score=z.score,
                rank=z.rank,
                role=z.role,
            )
            for z in zones
        ],
        recent_pivots=recent,
    )


def frame_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(high, low, close, volume) of an OHLCV frame as contiguous float64 arrays."""
    h, lo, c, v = (np.ascontiguousarray(df[k].to_numpy(dtype=np.float64)) for k in ("high", "low", "close", "volume"))
    return h, lo, c, v


def analyze_frame(
    df: pd.DataFrame,
    symbol: str = "",
    timeframe: str = "",
    as_of: int | None = None,
    config: StructureConfig = DEFAULT_CONFIG,
) -> StructureReport:
    """Analyse an OHLCV frame (closed candles) as of bar `as_of` (default: its last bar)."""
    if len(df) == 0:
        raise ValueError("empty OHLCV frame")
    high, low, close, volume = frame_arrays(df)
    idx = df.index if isinstance(df.index, pd.DatetimeIndex) else None
    bar = len(df) - 1 if as_of is None else as_of
    return analyze_arrays(high, low, close, volume, bar, symbol, timeframe, idx, config)
