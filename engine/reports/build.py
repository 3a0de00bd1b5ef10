"""Builds one report: structure of the report's timeframe and its neighbours, plans, profile, market context,
the changes since the previous report, an optional grounded narrative and the chart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from engine.reports.body import KeyLevel, ProfileSummary, ReportBody, Scenario, Target
from engine.reports.changes import changes_since
from engine.reports.confidence import view_confidence
from engine.reports.inputs import MarketInputs, WhaleFeed, market_inputs, optional
from engine.reports.narrative import GroundingCheck, Narrator, grounded_narrative
from engine.reports.render import render_body
from tools.agent_tools.base import ToolError, symbol_of
from tools.agent_tools.structure_data import cached_report, closed_frame, structure_json
from tools.charts.renderer import ChartRenderer
from tools.market.base import MarketData, MarketDataError
from tools.structure.mtf import StructureCache, combine
from tools.structure.report import StructureReport
from tools.structure.score import McfScore, mcf_score
from tools.structure.targets import TradePlan, plan_from_report

REPORT_TIMEFRAMES: tuple[str, ...] = ("15m", "1h", "4h", "1d")
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "15m": ("15m", "1h", "4h"),
    "1h": ("15m", "1h", "4h"),
    "4h": ("15m", "1h", "4h"),
    "1d": ("1h", "4h", "1d"),
}
LEVELS_PER_SIDE = 3
BIAS_CUT = 1 / 3  # mean timeframe bias beyond this (2 of 3 agreeing, or 1 with the rest neutral) is a bias


class ReportError(Exception):
    """A report could not be built; `user_message` says why."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class ReportData:
    """What a report is built from: closed candles per timeframe, the live price (None: use the close), context."""

    symbol: str
    timeframe: str
    frames: dict[str, pd.DataFrame]
    price: float | None
    inputs: MarketInputs


@dataclass
class BuiltReport:
    """A report ready to store and send: body, Markdown, chart PNG and the data its figures come from."""

    body: ReportBody
    text: str
    chart: bytes | None
    sources: list[str] = field(default_factory=list)


def _scenario(plan: TradePlan) -> Scenario:
    return Scenario(
        side=plan.side,
        entry=plan.entry,
        stop=plan.stop,
        targets=[Target(name=t.name, price=t.price, rr=t.rr) for t in plan.targets],
        rr_t1=plan.rr_t1,
        rejected=plan.rejected,
        reasons=list(plan.reasons),
    )


def _levels(report: StructureReport) -> list[KeyLevel]:
    keep = [lv for lv in report.resistances() if lv.state == "holding"][:LEVELS_PER_SIDE]
    keep += [lv for lv in report.supports() if lv.state == "holding"][:LEVELS_PER_SIDE]
    return [
        KeyLevel(price=lv.price, role=lv.role, grade=lv.grade, touches=lv.touches, distance_atr=lv.distance_atr)
        for lv in keep
    ]


def bias_of(alignment: dict[str, int]) -> str:
    """bullish / bearish / neutral from the mean of the timeframes' biases."""
    mean = sum(alignment.values()) / len(alignment) if alignment else 0.0
    return "bullish" if mean >= BIAS_CUT else "bearish" if mean <= -BIAS_CUT else "neutral"


def confidence_of(bias: str, alignment: dict[str, int], scores: dict[str, McfScore]) -> float:
    """Confidence of the bias: of the side it points to, or for neutral one minus the stronger side's."""
    if bias == "bullish":
        return view_confidence(alignment, scores["long"])
    if bias == "bearish":
        return view_confidence(alignment, scores["short"])
    return round(1 - max(view_confidence(alignment, s) for s in scores.values()), 4)


def _sources(
    main: StructureReport, simulated: bool, price: float, inputs: MarketInputs, prev: ReportBody | None
) -> list[str]:
    out = [
        json.dumps(structure_json(main, simulated, per_side=8, price=price)),
        json.dumps({"price": price, "close": main.close}),
        inputs.derivatives.model_dump_json(),
        inputs.whale.model_dump_json(),
    ]
    if prev is not None:
        out.append(prev.model_dump_json(include={"price", "levels", "profile"}))
    return out


class ReportBuilder:
    """Builds reports from a market data provider; the narrator and the whale feed are optional."""

    def __init__(
        self,
        market: MarketData,
        *,
        whales: WhaleFeed | None = None,
        narrator: Narrator | None = None,
        grounding: GroundingCheck | None = None,
        cache: StructureCache | None = None,
        bars: int = 500,
        chart: bool = True,
        renderer: ChartRenderer | None = None,
    ) -> None:
        if narrator is not None and grounding is None:
            raise ValueError("a narrator needs a grounding check")
        self.market = market
        self.whales = whales
        self.narrator = narrator
        self.grounding = grounding
        self.cache = cache or StructureCache()
        self.bars = bars
        self.chart = chart
        # Shared with the chart tool by the composition root: one render at a time in the process.
        self.renderer = renderer or ChartRenderer()

    async def _frames(self, symbol: str, timeframes: Sequence[str]) -> dict[str, pd.DataFrame]:
        try:
            frames = await asyncio.gather(*(closed_frame(self.market, symbol, tf, self.bars) for tf in timeframes))
        except ToolError as exc:
            raise ReportError(exc.user_message) from None
        except MarketDataError as exc:
            raise ReportError(exc.user_message) from None
        return dict(zip(timeframes, frames, strict=True))

    async def build(self, symbol: str, timeframe: str = "4h", previous: ReportBody | None = None) -> BuiltReport:
        """The report of `symbol` on `timeframe` as of its last closed candle; `previous` for the changes."""
        data = await self.fetch(symbol, timeframe)
        reports = self.analyse(data)
        body, sources = self.assemble(data, reports, previous)
        if self.narrator is not None and self.grounding is not None:
            narrative, dropped = await grounded_narrative(self.narrator, self.grounding, render_body(body), sources)
            body.narrative, body.narrative_dropped = narrative, dropped
        chart = await self._chart(data.frames[timeframe], reports[timeframe], body) if self.chart else None
        return BuiltReport(body=body, text=render_body(body), chart=chart, sources=sources)

    async def fetch(self, symbol: str, timeframe: str) -> ReportData:
        """The data a report is made of: closed candles of the timeframe and its neighbours, price, context."""
        if timeframe not in NEIGHBOURS:
            raise ReportError(f"Reports are made on {', '.join(REPORT_TIMEFRAMES)}, not {timeframe!r}.")
        try:
            sym = symbol_of(symbol)
        except ToolError as exc:
            raise ReportError(exc.user_message) from None
        frames = await self._frames(sym, NEIGHBOURS[timeframe])
        ticker = await optional(self.market.ticker(sym))
        inputs = await market_inputs(self.market, sym, frames[timeframe], self.whales)
        return ReportData(sym, timeframe, frames, float(ticker.last) if ticker is not None else None, inputs)

    def analyse(self, data: ReportData) -> dict[str, StructureReport]:
        """The structure of each timeframe (from the cache when its last candle was analysed already)."""
        return {tf: cached_report(self.cache, frame, data.symbol, tf) for tf, frame in data.frames.items()}

    def assemble(
        self, data: ReportData, reports: dict[str, StructureReport], previous: ReportBody | None
    ) -> tuple[ReportBody, list[str]]:
        """The deterministic body and the source documents its figures come from (pure: no I/O)."""
        sym, timeframe, inputs = data.symbol, data.timeframe, data.inputs
        main = reports[timeframe]
        alignment = combine(sym, reports).alignment
        price = data.price if data.price is not None else main.close
        scores = {
            side: mcf_score(main, side, inputs.order_flow_in, inputs.derivatives_in, inputs.onchain_in)
            for side in ("long", "short")
        }
        bias = bias_of(alignment)
        plans = [plan_from_report(main, side, price=price) for side in ("long", "short")]
        p = main.profile
        body = ReportBody(
            symbol=main.symbol or sym,
            timeframe=timeframe,
            as_of=main.as_of_time,
            simulated=self.market.simulated,
            price=price,
            close=main.close,
            atr=main.atr,
            bias=bias,  # type: ignore[arg-type]
            confidence=confidence_of(bias, alignment, scores),
            alignment=alignment,
            levels=_levels(main),
            scenarios=[_scenario(pl) for pl in plans],
            profile=ProfileSummary(
                poc=p.poc, vah=p.vah, val=p.val, value_area_share=p.value_area_share, hvn=p.hvn[:3], lvn=p.lvn[:3]
            ),
            derivatives=inputs.derivatives,
            whale=inputs.whale,
            first_report=previous is None,
        )
        if previous is not None:
            body.changes = changes_since(previous, body)
        return body, _sources(main, self.market.simulated, price, inputs, previous)

    async def _chart(self, frame: pd.DataFrame, main: StructureReport, body: ReportBody) -> bytes:
        from tools.charts import ChartSource, PositionLines

        lines: Any = None
        side = {"bullish": "long", "bearish": "short"}.get(body.bias)
        plan = next((s for s in body.scenarios if s.side == side and not s.rejected), None)
        if plan is not None:
            # The scenario the bias favours is drawn when it is one to take.
            lines = PositionLines(plan.entry, plan.stop, [t.price for t in plan.targets], plan.side)
        # The title names the data's source, simulated data is stamped so, and the price the body quotes is marked.
        source = ChartSource(self.market.name, self.market.simulated, body.price)
        return await self.renderer.structure_chart(frame, main, lines, source=source)


def body_of(content: dict[str, Any]) -> ReportBody | None:
    """The body stored in a report row's content (None for rows of an older shape)."""
    try:
        return ReportBody.model_validate(content)
    except ValueError:
        return None
