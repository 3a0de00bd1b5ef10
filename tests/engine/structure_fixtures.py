"""Small hand-made StructureReports for rule tests."""

from __future__ import annotations

from typing import Literal

from tools.structure.report import LevelOut, PivotOut, ProfileOut, StructureReport


def level(
    price: float, grade: int, role: Literal["support", "resistance"], *, broken: str | None = None, touches: int = 4
) -> LevelOut:
    """A level at `price`; `broken` = 'up' | 'down' marks it broken in that direction."""
    return LevelOut(
        price=price,
        zone_low=price * 0.999,
        zone_high=price * 1.001,
        touches=touches,
        highs=touches // 2,
        lows=touches - touches // 2,
        first_touch=10,
        last_touch=90,
        confirmed_at=60,
        grade=grade,
        role=role,
        state="broken" if broken else "holding",
        broken_at=99 if broken else None,
        break_direction=broken,
        distance_atr=0.0,  # type: ignore[arg-type]
    )


def pivot(price: float, kind: Literal["high", "low"], confirmed_at: int) -> PivotOut:
    """A confirmed swing pivot."""
    return PivotOut(bar=confirmed_at - 15, confirmed_at=confirmed_at, price=price, kind=kind)


def report(
    *,
    close: float = 100.0,
    atr: float = 2.0,
    levels: list[LevelOut] | None = None,
    major_breaks: list[LevelOut] | None = None,
    pivots: list[PivotOut] | None = None,
    hvn: list[float] | None = None,
    lvn: list[float] | None = None,
) -> StructureReport:
    """A StructureReport with just the parts the rules read."""
    profile = ProfileOut(
        bins=250,
        low=close * 0.8,
        high=close * 1.2,
        poc=close,
        vah=close * 1.05,
        val=close * 0.95,
        value_area_share=0.7,
        total_volume=1.0,
        buy_volume=0.5,
        sell_volume=0.5,
        hvn=hvn or [],
        lvn=lvn or [],
        volume=[],
        buy=[],
        sell=[],
    )
    return StructureReport(
        symbol="SOL/USDT:USDT",
        timeframe="1h",
        as_of=100,
        window_start=0,
        bars=101,
        close=close,
        atr=atr,
        trend=0,
        bias=0,
        levels=levels or [],
        major_breaks=major_breaks or [],
        trendlines=[],
        pressure_points=[],
        profile=profile,
        auto_support=[],
        recent_pivots=pivots or [],
    )
