"""Position evaluation for the `evaluate_position` tool: the risk engine's rules on a fresh market view."""

from __future__ import annotations

from typing import Any

from engine.monitor.market_view import StructureMarketViews
from engine.risk.context import RiskContext, RiskPosition
from engine.risk.evaluate import evaluate
from tools.agent_tools.base import num
from tools.exchange.models import Position
from tools.market.base import MarketData
from tools.structure.mtf import StructureCache


class RulesEvaluator:
    """Evaluates a position with the exit hierarchy and hard rules (no model opinion here)."""

    def __init__(self, market: MarketData, cache: StructureCache | None = None) -> None:
        self.views = StructureMarketViews(market, cache)

    async def __call__(self, position: Position, timeframe: str) -> dict[str, Any]:
        """The decision as JSON-like data, with the market figures it used."""
        view = await self.views.view(position.symbol, timeframe)
        risk_position = RiskPosition(
            symbol=position.symbol,
            side=position.side.value,
            entry=float(position.entry_price),
            size=float(position.size),
            leverage=max(1.0, float(position.leverage or 1)),
            stop=float(position.stop_loss) if position.stop_loss else None,
            targets=[float(position.take_profit)] if position.take_profit else [],
        )
        decision = evaluate(RiskContext(position=risk_position, market=view))
        return {
            "timeframe": timeframe,
            "price": num(view.price),
            "atr": num(view.atr),
            "action": decision.action,
            # The calibrated figure where the rule has one (what the execution guards compare), not the rule's own
            # scale: a 0.85 from a rule that is right a third of the time would mislead the analyst and the user.
            "confidence": round(
                decision.calibrated_confidence if decision.calibrated_confidence is not None else decision.confidence, 2
            ),
            "reasoning": decision.reasoning,
            "close_pct": decision.close_pct,
            "new_stop": num(decision.new_stop),
            "warnings": decision.warnings,
            "rule": decision.rule,
        }
