"""Reports on real candles: every section, only figures from the data, grounded narratives, changes, context."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from agents.grounding import check_answer, price_figures
from engine.reports.body import ReportBody
from engine.reports.build import ReportBuilder, ReportError
from engine.reports.render import render_body
from tests.conftest import REPO_ROOT
from tools.charts.renderer import ChartRenderer
from tools.charts.structure_chart import ChartSource, PositionLines
from tools.market.base import Funding, LongShortRatio, OpenInterest
from tools.market.replay import ReplayMarketData
from tools.market.simulated import SimulatedMarketData
from tools.structure.report import StructureReport
from tools.structure.score import OnChainInputs

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
SECTIONS = (
    "report**",
    "Bias **",
    "**Key levels**",
    "**Scenarios**",
    "- Bullish (long): entry",
    "- Bearish (short): entry",
    "**Volume profile**",
    "- POC ",
    "**Derivatives and flows**",
    "- Funding:",
    "- Open interest change:",
    "- Long/short ratio:",
    "- Whale flows:",
    "**Since the previous report**",
)


class ScriptedNarrator:
    """A model stand-in that returns a fixed narrative, built from the body it is shown."""

    def __init__(self, write: object) -> None:
        self.write = write
        self.seen: list[str] = []

    async def __call__(self, body_text: str) -> str:
        self.seen.append(body_text)
        return self.write(body_text)  # type: ignore[operator]


class DerivativesReplay(ReplayMarketData):
    """Real candles plus the derivatives readings a futures exchange publishes."""

    async def funding(self, symbol: str) -> Funding:
        return Funding(symbol=self.resolve(symbol), source="test", timestamp=NOW, rate=0.00012)

    async def open_interest(self, symbol: str, window_hours: float = 4.0) -> OpenInterest:
        return OpenInterest(
            symbol=self.resolve(symbol), source="test", timestamp=NOW, value=81_234.5, value_usd=7_845_123_456.0,
            change_pct=6.25, window_hours=window_hours,
        )  # fmt: skip

    async def long_short_ratio(self, symbol: str) -> LongShortRatio | None:
        return LongShortRatio(symbol=self.resolve(symbol), source="test", timestamp=NOW, ratio=1.734)


class Whales:
    """A configured on-chain feed."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    async def onchain_inputs(self, symbol: str) -> OnChainInputs:
        if self.fail:
            return OnChainInputs()  # what PremiumData answers when Whale Alert is down
        return OnChainInputs(whale_net_flow=25_500_000.0, exchange_net_flow=-12_300_000.0, stablecoin_net_mint=None)


@pytest.fixture(scope="module")
def replay() -> ReplayMarketData:
    path = Path(os.environ.get("BASTION_DATA_DIR", REPO_ROOT.parent / "shared" / "data" / "ohlcv"))
    if not (path / "BTC_USDT-1h.csv").exists():
        pytest.skip(f"real candle data not found at {path}")
    return ReplayMarketData(path, now=NOW)


async def test_every_section_and_only_figures_from_the_data(replay: ReplayMarketData) -> None:
    built = await ReportBuilder(replay, chart=False).build("BTC", "4h")
    for section in SECTIONS:
        assert section in built.text, section
    body = built.body
    assert body.symbol == "BTC/USDT:USDT" and body.timeframe == "4h" and body.as_of is not None
    assert body.bias in ("bullish", "bearish", "neutral") and 0 <= body.confidence <= 1
    assert set(body.alignment) == {"15m", "1h", "4h"}
    assert body.levels and all(1 <= lv.grade <= 3 and lv.touches >= 1 for lv in body.levels)
    assert {s.side for s in body.scenarios} == {"long", "short"}
    assert all(len(s.targets) == 3 and s.rr_t1 > 0 for s in body.scenarios)
    assert body.profile.val <= body.profile.poc <= body.profile.vah
    # Candle files have no derivatives and no whale feed is configured: said so, nothing invented.
    assert built.text.count("not available") == 4
    # The deterministic body passes the analyst's grounding check against the raw data it came from ...
    figures = price_figures(built.text)
    assert len(figures) >= 15
    result = check_answer(built.text, built.sources)
    assert result.ok, result.unsupported
    # ... and every price it shows is a value of the structure engine's output (no sum/difference needed).
    raw = {abs(float(x)) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", " ".join(built.sources))}
    for f in figures:
        assert any(abs(f.value - x) <= 0.001 * f.value for x in raw), f.text


async def test_an_invented_price_in_the_narrative_is_dropped(replay: ReplayMarketData) -> None:
    invented = "141,234"  # far from every price (and from the sums and differences the check allows)
    first = await ReportBuilder(replay, chart=False).build("BTC")
    assert not check_answer(f"Watch {invented} next.", first.sources).ok  # truly not in the data
    narrator = ScriptedNarrator(lambda _text: f"Structure leans one way; the line to watch is {invented}.")
    built = await ReportBuilder(replay, narrator=narrator, grounding=check_answer, chart=False).build("BTC")
    assert narrator.seen and "**Key levels**" in narrator.seen[0]
    assert built.body.narrative is None
    assert built.body.narrative_dropped == [invented]
    assert invented not in built.text and "**Narrative**" not in built.text


async def test_a_grounded_narrative_is_kept(replay: ReplayMarketData) -> None:
    def write(text: str) -> str:
        poc = re.search(r"POC ([\d,.]+)", text)
        assert poc is not None
        return f"Price trades around value; the POC at {poc.group(1)} is the level that decides the next leg."

    built = await ReportBuilder(replay, narrator=ScriptedNarrator(write), grounding=check_answer, chart=False).build(
        "BTC"
    )
    assert built.body.narrative is not None and "POC at" in built.body.narrative
    assert "**Narrative**" in built.text and built.body.narrative_dropped == []


async def test_a_narrator_needs_the_grounding_check(replay: ReplayMarketData) -> None:
    with pytest.raises(ValueError, match="grounding"):
        ReportBuilder(replay, narrator=ScriptedNarrator(lambda t: "x"))


async def test_changes_since_the_previous_report(replay: ReplayMarketData) -> None:
    md = ReplayMarketData(replay.data_dir, now=NOW)
    builder = ReportBuilder(md, chart=False)
    first = await builder.build("ETH", "1h")
    assert first.body.first_report and "First report" in first.text
    md.set_now(datetime(2026, 1, 22, 12, tzinfo=UTC))
    second = await builder.build("ETH", "1h", previous=first.body)
    changes = second.body.changes
    assert not second.body.first_report
    assert changes[0].startswith(f"Price {first.text.split('Price ')[1].split('.')[0]}")
    assert any(c.startswith("Bias ") for c in changes)
    assert any("New " in c or "no longer among" in c for c in changes), changes
    assert check_answer(second.text, second.sources).ok


async def test_derivatives_and_whale_context_when_available(replay: ReplayMarketData) -> None:
    md = DerivativesReplay(replay.data_dir, now=NOW)
    built = await ReportBuilder(md, whales=Whales(), chart=False).build("SOL")
    d = built.body.derivatives
    assert d.funding_pct_8h == pytest.approx(0.012) and d.oi_change_pct == 6.25 and d.long_short_ratio == 1.734
    assert "+0.0120% per 8h" in built.text
    assert "+6.25% over 4h (open interest $7,845,123,456)" in built.text
    assert "1.734 accounts long per short" in built.text
    assert built.body.whale.available and built.body.whale.lean == "bullish"
    assert "whale net flow +$25,500,000, exchange net flow -$12,300,000, stablecoin net mint not available" in (
        built.text
    )
    assert check_answer(built.text, built.sources).ok
    # A feed that fails degrades to "not available" instead of failing the report.
    down = await ReportBuilder(md, whales=Whales(fail=True), chart=False).build("SOL")
    assert not down.body.whale.available and "Whale flows: not available" in down.text


async def test_bad_symbol_and_timeframe_are_refused(replay: ReplayMarketData) -> None:
    builder = ReportBuilder(replay, chart=False)
    with pytest.raises(ReportError, match="Unknown symbol"):
        await builder.build("NOPE")
    with pytest.raises(ReportError, match="not '5m'"):
        await builder.build("BTC", "5m")


async def test_stored_content_renders_the_same_report(replay: ReplayMarketData) -> None:
    built = await ReportBuilder(replay, chart=False).build("BTC", "4h")
    assert built.chart is None  # the chart itself is checked end to end (tests/bot/test_reports_telegram.py)
    again = ReportBody.model_validate(json.loads(built.body.model_dump_json()))
    assert render_body(again) == built.text


class RecordingRenderer(ChartRenderer):
    """The real renderer, remembering what each chart was asked to show."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[PositionLines | None, ChartSource | None]] = []

    async def structure_chart(
        self,
        frame: pd.DataFrame,
        report: StructureReport,
        position: PositionLines | None = None,
        bars: int = 240,
        source: ChartSource | None = None,
    ) -> bytes:
        self.asked.append((position, source))
        return await super().structure_chart(frame, report, position, bars, source)


@pytest.mark.parametrize("simulated", [False, True])
async def test_the_report_chart_names_its_source_marks_the_price_and_stamps_simulated_data(
    replay: ReplayMarketData, simulated: bool
) -> None:
    market = SimulatedMarketData(seed=3, now=NOW) if simulated else replay
    renderer = RecordingRenderer()
    built = await ReportBuilder(market, renderer=renderer).build("BTC", "4h")
    ((position, source),) = renderer.asked
    # The title then says where the candles came from, the SIMULATED stamp lies on simulated candles and the
    # price marker shows the price the body quotes (tests/charts check each of those on the figure).
    assert source == ChartSource(market.name, simulated, built.body.price)
    favoured = {"bullish": "long", "bearish": "short"}.get(built.body.bias)
    plan = next((s for s in built.body.scenarios if s.side == favoured and not s.rejected), None)
    assert (position is None) == (plan is None)
    if plan is not None and position is not None:
        assert (position.side, position.entry, position.stop) == (plan.side, plan.entry, plan.stop)
    assert built.chart is not None
    assert Image.open(io.BytesIO(built.chart)).size == (1280, 720)
