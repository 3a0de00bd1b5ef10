"""The analyst's position check reports the confidence the execution guards compare, not the rule's own scale."""

from __future__ import annotations

from decimal import Decimal

from agents.evaluation import RulesEvaluator
from engine.execution.guards import guard_confidence
from engine.monitor.market_view import StructureMarketViews
from engine.risk.context import RiskContext, RiskPosition
from engine.risk.evaluate import evaluate
from tools.exchange.models import Position, PositionSide
from tools.market.simulated import SimulatedMarketData


async def test_the_position_check_shows_the_calibrated_confidence_the_guards_compare() -> None:
    market = SimulatedMarketData(seed=0)
    price = (await market.ticker("BTC/USDT")).last
    # A 20x long without a stop: a rules decision the shipped table calibrates.
    position = Position(
        symbol="BTC/USDT", side=PositionSide.LONG, size=Decimal("0.01"), entry_price=Decimal(str(price)),
        leverage=Decimal(20),
    )  # fmt: skip
    checked = await RulesEvaluator(market)(position, "1h")

    view = await StructureMarketViews(market).view("BTC/USDT", "1h")
    risk_position = RiskPosition(symbol="BTC/USDT", side="long", entry=float(price), size=0.01, leverage=20.0)
    decision = evaluate(RiskContext(position=risk_position, market=view))
    assert decision.calibrated_confidence is not None and decision.source == "rules"
    assert abs(decision.calibrated_confidence - decision.confidence) > 0.01  # the two scales differ here
    compared, _ = guard_confidence(decision)
    assert checked["rule"] == decision.rule
    assert checked["confidence"] == round(compared, 2)
