"""The agent's tool set: typed specs, one `run` that validates and never raises, and LangChain tool wrappers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ValidationError

from tools.agent_tools import account_tools, market_tools, trade_tools
from tools.agent_tools.base import EXPECTED_ERRORS, ToolContext, ToolDeps, dumps
from tools.agent_tools.schemas import (
    AccountArgs,
    ChartArgs,
    EvaluateArgs,
    MonteCarloArgs,
    PreferencesArgs,
    ProposeOrderArgs,
    SizeArgs,
    StructureArgs,
    SymbolArgs,
)

log = logging.getLogger(__name__)
PROPOSE_ORDER = "propose_order"
# Key of the ToolContext in a RunnableConfig's "configurable" when a wrapper is invoked directly.
CONTEXT_KEY = "bastion_tool_context"

ToolFn = Callable[[ToolDeps, ToolContext, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: name, description for the model, argument model, implementation."""

    name: str
    description: str
    args: type[BaseModel]
    fn: ToolFn
    read_only: bool = True
    # Reads the user's own account (positions, balance): only for users who may trade, like the order tools.
    personal: bool = False

    @property
    def needs_trader(self) -> bool:
        """Whether only a user with the trader permission may have this tool (personal reads and orders)."""
        return self.personal or not self.read_only


SPECS: tuple[ToolSpec, ...] = (
    ToolSpec("get_price", "Last price, 24h change and bid/ask of a symbol.", SymbolArgs, market_tools.get_price),
    ToolSpec(
        "get_market_overview",
        "Price, funding, open interest and its change, volatility regime, book imbalance, long/short ratio.",
        SymbolArgs,
        market_tools.get_market_overview,
    ),
    ToolSpec(
        "get_structure",
        "Market structure on one timeframe: support/resistance levels with grade and touches, trendlines, "
        "volume profile (POC, value area), and long/short trade plans (entry, stop, T1-T3, R:R).",
        StructureArgs,
        market_tools.get_structure,
    ),
    ToolSpec(
        "get_chart",
        "Render a candlestick chart with levels, volume profile and the user's position; the user receives it.",
        ChartArgs,
        market_tools.get_chart,
    ),
    ToolSpec("get_positions", "The user's open positions.", AccountArgs, account_tools.get_positions, personal=True),
    ToolSpec("get_balance", "The user's account balance.", AccountArgs, account_tools.get_balance, personal=True),
    ToolSpec(
        "evaluate_position",
        "Risk engine decision for one open position (hold, take profit, exit, move stop) with reasons.",
        EvaluateArgs,
        account_tools.evaluate_position,
        personal=True,
    ),
    ToolSpec(
        "size_trade",
        "Pre-trade calculator: position size from capital, risk % and stop distance (optional Kelly fraction).",
        SizeArgs,
        trade_tools.size_trade,
    ),
    ToolSpec(
        "monte_carlo",
        "Monte Carlo of N trades at a fixed risk per trade from a win rate and payoff: percentiles of return and "
        "maximum drawdown, probability of ending in loss (default 50,000 paths).",
        MonteCarloArgs,
        trade_tools.run_monte_carlo,
    ),
    ToolSpec(
        "update_preferences",
        "Save the user's default risk %, capital or watchlist.",
        PreferencesArgs,
        trade_tools.update_preferences,
    ),
    ToolSpec(
        PROPOSE_ORDER,
        "Propose an order on an open position (close all or a %, set stop, set take-profit, stop to breakeven). "
        "It is NOT executed: the user sees the exact order and must confirm it.",
        ProposeOrderArgs,
        trade_tools.propose_order,
        read_only=False,
    ),
)
SPEC_BY_NAME: dict[str, ToolSpec] = {s.name: s for s in SPECS}
READ_ONLY_TOOLS: frozenset[str] = frozenset(s.name for s in SPECS if s.read_only)
# What a user without the trader permission may use: market data and the calculator, nothing about an account.
PUBLIC_TOOLS: frozenset[str] = frozenset(s.name for s in SPECS if not s.needs_trader)
TRADER_ONLY_NOTICE = (
    "Refused: this needs trading access (positions, balance and orders are for allowed users only); "
    "ask an admin of this bot for access."
)


def validation_message(name: str, exc: ValidationError) -> str:
    """A short, model-readable list of what was wrong with the arguments."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(x) for x in err["loc"]) or "arguments"
        parts.append(f"{loc}: {err['msg']}")
    return f"Invalid arguments for {name}: " + "; ".join(parts)


@dataclass
class ToolResult:
    """What a tool returned: JSON text for the model, the data, or an error message."""

    name: str
    content: str
    data: dict[str, Any] | None = None
    error: bool = False


class Toolkit:
    """Runs the agent tools for one user context; errors become messages, never exceptions."""

    def __init__(self, deps: ToolDeps, specs: tuple[ToolSpec, ...] = SPECS) -> None:
        self.deps = deps
        self.specs = {s.name: s for s in specs}

    async def run(self, name: str, args: Any, ctx: ToolContext) -> ToolResult:
        """Validate `args`, run the tool, and return its compact JSON (or the error, for the model)."""
        spec = self.specs.get(name)
        if spec is None:
            return ToolResult(name, f"Unknown tool {name!r}. Available: {', '.join(self.specs)}.", error=True)
        if not isinstance(args, dict):
            return ToolResult(name, f"Invalid arguments for {name}: expected a JSON object.", error=True)
        try:
            parsed = spec.args.model_validate(args)
        except ValidationError as exc:
            return ToolResult(name, validation_message(name, exc), error=True)
        try:
            data = await spec.fn(self.deps, ctx, parsed)
        except EXPECTED_ERRORS as exc:
            return ToolResult(name, f"Error: {getattr(exc, 'user_message', None) or exc}", error=True)
        except Exception:
            log.exception("tool %s crashed", name)
            return ToolResult(name, f"Error: {name} failed unexpectedly; try another approach.", error=True)
        return ToolResult(name, dumps(data), data)

    def allowed(self, name: str, may_trade: bool) -> bool:
        """Whether a user (who may trade or not) may have the tool `name` run (unknown names are left to `run`)."""
        spec = self.specs.get(name)
        return may_trade or spec is None or not spec.needs_trader

    def langchain_tools(self, may_trade: bool = True) -> list[BaseTool]:
        """The tools as LangChain `StructuredTool`s (for `bind_tools`, or direct use with a ToolContext in config);
        without `may_trade` only the public ones, so the model is never offered what it may not call."""
        return [self._wrap(spec) for spec in self.specs.values() if may_trade or not spec.needs_trader]

    def _wrap(self, spec: ToolSpec) -> BaseTool:
        async def call(config: RunnableConfig, **kwargs: Any) -> str:
            ctx = (config.get("configurable") or {}).get(CONTEXT_KEY)
            if not isinstance(ctx, ToolContext):
                return f"Error: {spec.name} needs a user context."
            return (await self.run(spec.name, kwargs, ctx)).content

        return StructuredTool.from_function(
            coroutine=call, name=spec.name, description=spec.description, args_schema=spec.args, infer_schema=False
        )
