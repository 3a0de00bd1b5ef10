"""Issue 19 items 2, 4 and 6 in the offline model: numbers as people write them, every engine reachable, short
answers to unmapped questions in the user's language, replayed data dated."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

from agents.approval import render_outcome
from agents.offline import render
from agents.offline.intents import parse_request
from agents.offline.model import answer_directly, in_words, plan
from tools.agent_tools.account_tools import position_json, risk_to_stop
from tools.agent_tools.base import ToolContext, ToolDeps
from tools.agent_tools.registry import Toolkit, ToolResult
from tools.exchange.models import Position, PositionSide
from tools.market.simulated import SimulatedMarketData
from tools.numbers import money_text, plural, price_text, size_text

DATA = Path("/work/shared/data/ohlcv")


def test_prices_at_the_instruments_tick_sizes_and_money_without_float_noise() -> None:
    assert price_text(4811.50103023, "ETH/USDT:USDT") == "4,811.50"
    assert price_text(128852.0, "BTC/USDT:USDT") == "128,852.0"
    assert price_text(2.109375000000, "XRP") == "2.1094"
    assert price_text(0.00001234) == "0.00001234" and price_text(24.0527) == "24.05"
    assert size_text(Decimal("0.025000000000")) == "0.025" and size_text(Decimal("1E+1")) == "10"
    assert size_text(0.0841744123) == "0.0841744"
    assert money_text(-0.0240527, "USDT", signed=True) == "-0.02405 USDT"  # 4 digits: the grounding check finds it
    assert money_text(9999.921, "USDT") == "9,999.92 USDT"
    assert (plural(1, "touch"), plural(2, "touch"), plural(1, "bar")) == ("1 touch", "2 touches", "1 bar")


def test_positions_and_balance_read_as_people_write_them() -> None:
    row = {
        "symbol": "ETH/USDT:USDT",
        "side": "long",
        "size": 0.025000000000,
        "entry": 4811.50103023,
        "mark": 4810.54,
        "unrealised_pnl": -0.0240527,
        "pnl_pct": -0.02,
        "leverage": 1.0,
        "liquidation": 24.0527,
        "stop": 2000.0,
    }
    text = render.positions({"account": "paper", "exchange": "paper", "positions": [row]})
    assert "long 0.025 @ 4,811.50, mark 4,810.54, PnL -0.02405 USDT (-0.02%)" in text
    assert "stop 2,000.00, liquidation 24.05" in text and "24.0527" not in text
    bal = {"account": "paper", "exchange": "paper", "currency": "USDT", "total": 9999.92, "free": 9879.6}
    assert "unrealised PnL -0.02405 USDT" in render.balance({**bal, "used": 120.3, "unrealised_pnl": -0.0240527})


def test_one_touch_is_singular_in_chat_and_in_the_structure_report() -> None:
    level = {"price": 130077.0, "grade": 1, "touches": 1, "state": "holding"}
    assert "(grade 1, 1 touch)" in render._levels([level])
    from tools.structure.analysis import analyze_frame

    md = SimulatedMarketData(seed=0)
    import asyncio

    frame = asyncio.run(md.ohlcv("BTC", "1h", 400))
    human = analyze_frame(frame, "BTC/USDT:USDT", "1h").human()
    assert " 1 touches" not in human and " 1 bars" not in human


def test_executed_shows_the_fill_price_not_the_pre_trade_price() -> None:
    pending = {
        "action": "open",
        "summary": "Open a ETH/USDT:USDT long of 0.025 ETH at market on account paper. Price now 4,810.54.\nEntry ...",
    }
    text = render_outcome(pending, "placed", "Filled 0.025 at 4,811.50. Stop order at 2,000.00 placed.", None)
    assert "Price now" not in text and "4,810.54" not in text and "Filled 0.025 at 4,811.50" in text


@pytest.mark.parametrize(
    ("text", "kind", "tf"),
    [
        ("is eth bullish on the daily?", "analyze", "1d"),
        ("btc weekly outlook", "analyze", "1d"),
        ("levels sol on the 4-hour", "levels", "4h"),
        ("levels eth hourly", "levels", "1h"),
        ("how is my portfolio doing?", "portfolio", None),
    ],
)
def test_timeframe_words_and_the_portfolio_question(text: str, kind: str, tf: str | None) -> None:
    req = parse_request(text)
    assert (req.kind, req.timeframe) == (kind, tf)


def test_the_portfolio_answer_has_pnl_and_the_risk_to_each_stop() -> None:
    req = parse_request("how is my portfolio doing?")
    assert plan(req, {}) == [("get_positions", {}), ("get_balance", {})]
    pos = Position(
        symbol="SOL/USDT:USDT",
        side=PositionSide.LONG,
        size=Decimal(10),
        entry_price=Decimal(150),
        mark_price=Decimal(155),
        stop_loss=Decimal(145),
        unrealised_pnl=Decimal(50),
        leverage=Decimal(2),
    )
    row = position_json(pos)
    assert row["risk_to_stop_usd"] == 50.0 and risk_to_stop(pos.model_copy(update={"stop_loss": None})) is None
    bare = {**row, "symbol": "BTC/USDT:USDT", "stop": None, "risk_to_stop_usd": None}
    positions = {"account": "paper", "exchange": "paper", "positions": [row, bare], "risk_to_stops_usd": 50.0}
    balance = {"currency": "USDT", "total": 10000.0, "free": 9000.0, "unrealised_pnl": 100.0}
    text = plan(req, {"get_positions": positions, "get_balance": balance})
    assert isinstance(text, str)
    assert "equity 10,000.00 USDT" in text and "open PnL +100.00 USDT" in text and "2 open positions" in text
    assert "PnL +50.00 USDT" in text and "at risk to the stop 50.00 USDT (0.50% of equity)" in text
    assert "no stop, the loss is open down to liquidation" in text and "1 position without a stop" in text


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("what is the meaning of life", "I can't answer that"),
        ("¿qué tal el mercado hoy?", "No puedo responder"),
        ("wie ist der Markt heute?", "kann ich das nicht"),
        ("wie geht es?", "kann ich das nicht"),  # "es" is Spanish too: German by its other words
        ("comment va le marché ?", "Je ne peux pas"),
        ("как дела на рынке?", "не могу ответить"),
    ],
)
def test_an_unmapped_question_gets_a_short_answer_in_its_language(text: str, cue: str) -> None:
    answer = plan(parse_request(text), {})
    assert isinstance(answer, str) and cue in answer
    assert render.COMMANDS not in answer and len(answer) < 300


def test_an_unmapped_question_about_a_symbol_uses_its_timeframe_and_no_command_list() -> None:
    req = parse_request("what do you think of eth on the daily")
    assert plan(req, {}) == [
        ("get_market_overview", {"symbol": "ETH"}),
        ("get_structure", {"symbol": "ETH", "timeframe": "1d"}),
    ]


def test_tool_errors_are_told_in_words() -> None:
    raw = "Invalid arguments for propose_order: close_pct: Input should be less than or equal to 100"
    text = in_words(raw)
    assert "propose_order" not in text and "close_pct" not in text
    assert text.startswith("The order could not be worked out") and "close pct: Input should be" in text
    from agents.offline.model import ToolFailure

    assert "propose_order" not in cast(str, plan(parse_request("close half sol"), {"propose_order": ToolFailure(raw)}))


def _deps(market: Any) -> ToolDeps:
    return ToolDeps(market=market, sessions=cast(Any, None), open_account=cast(Any, None))


class MarketOnly:
    """The real market tools; the account-bound calculator answers a fixed size (no database in this test)."""

    def __init__(self, toolkit: Toolkit) -> None:
        self.toolkit = toolkit

    async def run(self, name: str, args: Any, ctx: Any) -> Any:
        if name == "size_trade":
            sized = {"capital": 10000.0, "risk_pct": 2.0, "risk_amount": 200.0, "units": 1.5, "notional_usd": 7000.0}
            return ToolResult(name, "{}", data={**sized, "stop": args["stop"]})
        return await self.toolkit.run(name, args, ctx)


async def test_analyze_shows_mcf_score_alignment_and_long_short_ratio() -> None:
    """The slash command path (answer_directly over the real tools) on the simulated market."""
    market = SimulatedMarketData(seed=0)
    runner = MarketOnly(Toolkit(_deps(market)))
    try:
        text, data = await answer_directly(runner, ToolContext(user_id=1), parse_request("analyze eth 4h"))
    finally:
        await market.close()
    s = data["get_structure"]
    assert set(s["mcf"]) == {"long", "short"} and 4 <= s["mcf"]["long"]["total"] <= 12
    assert list(s["alignment"]["biases"]) == ["15m", "1h", "4h", "1d"]
    assert f"MCF score (long): {s['mcf']['long']['total']} of 12" in text and "MCF score (short)" in text
    assert "- Timeframes: 15m " in text and "alignment " in text
    ratio = data["get_market_overview"]["long_short_ratio"]
    assert ratio is not None and f"long/short ratio {ratio:.3f}" in text


@pytest.mark.skipif(not DATA.is_dir(), reason="needs the shared candle files")
async def test_replayed_answers_carry_their_as_of_time() -> None:
    from tools.market.replay import ReplayMarketData

    market = ReplayMarketData(DATA, now="2026-02-19 03:30")
    toolkit, ctx = Toolkit(_deps(market)), ToolContext(user_id=1)
    price, _ = await answer_directly(toolkit, ctx, parse_request("price btc"))
    levels, _ = await answer_directly(toolkit, ctx, parse_request("levels btc 1h"))
    assert "(replay, as of 2026-02-19 03:00 UTC)" in price
    assert "1h structure (replay, as of 2026-02-19 03:00 UTC)" in levels
    sim = SimulatedMarketData(seed=0)
    simulated, _ = await answer_directly(Toolkit(_deps(sim)), ctx, parse_request("price btc"))
    assert "(simulated data)" in simulated and "replay" not in simulated
