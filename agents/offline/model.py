"""A deterministic chat model with the LangChain interface: maps common requests to tool calls, renders answers."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Protocol

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import Field

from agents.offline import render
from agents.offline.fallback import ANSWERS
from agents.offline.intents import ENTRY_EXAMPLES, Request, parse_request
from agents.state import turn_start
from tools.agent_tools.base import num

Call = tuple[str, dict[str, Any]]

# The model answers each turn in two steps (its tool calls, then the answer from their results), both from the
# same user text; parsing is a pure function of that text and a Request is immutable, so it is parsed once.
_parsed_request = functools.lru_cache(maxsize=1024)(parse_request)


class OfflineChatModel(BaseChatModel):
    """The default analyst when no model URL is set: same tools, answers built only from their results."""

    tool_names: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "bastion-offline"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """A copy that knows the tool names (the schemas need no parsing: its calls are its own)."""
        names = [t.name if isinstance(t, BaseTool) else str(getattr(t, "__name__", t)) for t in tools]
        return self.model_copy(update={"tool_names": names})

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next message: tool calls for the request, or the answer once their results are in."""
        start = turn_start(messages)
        text = messages[start].content if messages else ""
        request = _parsed_request(text if isinstance(text, str) else "")
        results: dict[str, Any] = {}
        for m in messages[start + 1 :]:
            if isinstance(m, ToolMessage) and m.name:
                results[m.name] = _parse(m)
        step = plan(request, results)
        if isinstance(step, str):
            return AIMessage(content=render.PREFIX + step)
        # Ids unique across turns: the turn's message id (when it has one) and the step within the turn.
        base = f"{(messages[start].id or '')[:8]}_{len(messages) - start}"
        calls = [
            {"name": name, "args": args, "id": f"offline_{base}_{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(step)
        ]
        return AIMessage(content="", tool_calls=calls)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # No I/O: answering inline avoids the default thread-pool hop.
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from _chunks(self.respond(messages))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in _chunks(self.respond(messages)):
            if run_manager is not None and isinstance(chunk.message.content, str) and chunk.message.content:
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk


class ToolRunner(Protocol):
    """Runs one agent tool by name (the `Toolkit`): its result's text, data and whether it failed."""

    async def run(self, name: str, args: Any, ctx: Any) -> Any: ...


async def answer_directly(
    toolkit: ToolRunner, ctx: Any, req: Request, max_steps: int = 4
) -> tuple[str, dict[str, Any]]:
    """The offline model's answer to `req` without a graph: its tool calls run here, in turn, until it answers.

    Returns the answer text and the tool data by tool name (a chart's id, for instance). Order proposals never
    run here: a request that needs one gets a message saying so (slash commands propose through the approval step).
    """
    results: dict[str, Any] = {}
    for _ in range(max_steps):
        step = plan(req, results)
        if isinstance(step, str):
            return step, {k: v for k, v in results.items() if not isinstance(v, ToolFailure)}
        if any(name == "propose_order" for name, _ in step):
            return "Orders are proposed through the approval step.", {}
        for name, args in step:
            res = await toolkit.run(name, args, ctx)
            results[name] = ToolFailure(res.content) if res.error else res.data
    return "I could not finish this with the tools available; please ask more specifically.", {}


def _chunks(message: AIMessage) -> Iterator[ChatGenerationChunk]:
    if message.tool_calls:
        tool_chunks = [
            {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i, "type": "tool_call_chunk"}
            for i, c in enumerate(message.tool_calls)
        ]
        yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=tool_chunks))  # type: ignore[arg-type]
        return
    text = str(message.content)
    lines = text.splitlines(keepends=True) or [text]
    for i, line in enumerate(lines):
        chunk = AIMessageChunk(content=line, chunk_position="last" if i == len(lines) - 1 else None)
        yield ChatGenerationChunk(message=chunk)


def _parse(m: ToolMessage) -> Any:
    content = m.content if isinstance(m.content, str) else json.dumps(m.content)
    if m.status == "error":
        return ToolFailure(content)
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        return ToolFailure(content)


class ToolFailure(str):
    """A tool's error text (kept apart from data so renderers can say what went wrong)."""


def _first_error(results: dict[str, Any]) -> str | None:
    return next((str(v) for v in results.values() if isinstance(v, ToolFailure)), None)


# What each tool does, for a user reading its error (tool names are internal).
TOOL_WORDS = {
    "get_price": "the price",
    "get_market_overview": "the market overview",
    "get_structure": "the market structure",
    "get_chart": "the chart",
    "get_positions": "your positions",
    "get_balance": "your balance",
    "evaluate_position": "the position check",
    "size_trade": "the position size",
    "monte_carlo": "the Monte Carlo simulation",
    "update_preferences": "your settings",
    "propose_order": "the order",
}
_INVALID = re.compile(r"^Invalid arguments for (\w+): (.*)$", re.DOTALL)
_FIELD = re.compile(r"(?:(?<=^)|(?<=; ))([a-z_.0-9]+): ")


def in_words(error: str) -> str:
    """A tool's error as a user may read it: "Invalid arguments for propose_order: close_pct: ..." becomes
    "The order was not accepted: close pct: ..." (no internal tool or field names)."""
    m = _INVALID.match(error)
    if m is None:
        return error
    what = TOOL_WORDS.get(m.group(1), "that request")
    detail = _FIELD.sub(lambda f: f.group(1).split(".")[-1].replace("_", " ") + ": ", m.group(2))
    return f"{what[0].upper()}{what[1:]} could not be worked out from what you wrote: {detail}"


def cannot_map(language: str) -> str:
    """The short answer to a question with no symbol and no tool, in the user's language."""
    return ANSWERS.get(language, ANSWERS["en"])


def _ask_symbol(what: str) -> str:
    return f"Which symbol? For example: {what} btc"


def plan(req: Request, results: dict[str, Any]) -> list[Call] | str:
    """Tool calls still needed for `req`, or the rendered answer."""
    if err := _first_error(results):
        return in_words(err.removeprefix("Error: "))
    sym, tf = req.symbol, req.timeframe or "1h"
    simple: dict[str, tuple[str, Callable[[Any], str]]] = {
        "price": ("get_price", render.price),
        "levels": ("get_structure", render.levels),
        "chart": ("get_chart", render.chart),
        "overview": ("get_market_overview", render.overview),
        "evaluate": ("evaluate_position", render.evaluation),
    }
    if req.kind in simple:
        tool, renderer = simple[req.kind]
        if tool in results:
            return renderer(results[tool])
        if not sym:
            return _ask_symbol(req.kind)
        args: dict[str, Any] = {"symbol": sym}
        if req.kind in ("levels", "chart", "evaluate"):
            args["timeframe"] = tf
        return [(tool, args)]
    if req.kind in ("positions", "balance"):
        tool = f"get_{req.kind}"
        return getattr(render, req.kind)(results[tool]) if tool in results else [(tool, {})]
    if req.kind == "portfolio":
        if "get_positions" in results and "get_balance" in results:
            return render.portfolio(results["get_positions"], results["get_balance"])
        return [("get_positions", {}), ("get_balance", {})]
    if req.kind == "size":
        return _size(req, results)
    if req.kind == "montecarlo":
        return _monte_carlo(req, results)
    if req.kind in ("close", "set_stop", "set_tp", "breakeven"):
        return _order(req, results)
    if req.kind == "open":
        return _entry(req, results)
    if req.kind in ("flatten_winners", "close_all", "cancel_all"):
        if "propose_order" in results:
            return str(results["propose_order"].get("summary", "Order proposed."))
        return [("propose_order", {"symbol": "*", "action": req.kind})]
    if req.kind == "analyze":
        return _analyze(req, results)
    if req.kind == "help":
        return render.COMMANDS
    if not sym:
        return cannot_map(req.language)
    if "get_structure" not in results:
        return [("get_market_overview", {"symbol": sym}), ("get_structure", {"symbol": sym, "timeframe": tf})]
    return render.cannot_map_with_data(results.get("get_structure"), results.get("get_market_overview"))


def _size(req: Request, results: dict[str, Any]) -> list[Call] | str:
    """Typed numbers go to the calculator as typed (it refuses bad ones); only untyped entry and stop come from the
    structure plan, and the answer says so."""
    if "size_trade" in results:
        return render.size(results["size_trade"])
    if "monte_carlo" in results:
        return render.monte_carlo(results["monte_carlo"])
    fields = (("entry", req.entry), ("stop", req.stop), ("risk_pct", req.risk_pct), ("capital", req.capital))
    typed = dict(req.size_args) or {k: v for k, v in fields if v is not None}
    extra: dict[str, object] = {k: typed[k] for k in ("risk_pct", "capital", "win_rate", "payoff") if k in typed}
    if "entry" in typed or "stop" in typed:
        if "entry" not in typed or "stop" not in typed:
            missing = "stop" if "entry" in typed else "entry"
            return f"Give the {missing} too, e.g.: size btc entry 60000 stop 59000 risk 1%"
        symbol = {"symbol": req.symbol} if req.symbol else {}
        return [("size_trade", {"entry": typed["entry"], "stop": typed["stop"], **symbol, **extra})]
    if not req.symbol and typed.get("kelly") and "win_rate" in typed and "payoff" in typed:
        return _monte_carlo(req, results)  # Kelly alone: the fraction with the distribution it leads to
    if not req.symbol:
        return "Give entry and stop, e.g.: size btc entry 60000 stop 59000 risk 1%"
    if "get_structure" not in results:
        return [("get_structure", {"symbol": req.symbol, "timeframe": req.timeframe or "1h"})]
    s = results["get_structure"]
    plan_ = s["plans"].get(render.favoured_side(s, req.side))
    if not plan_:
        return "No trade plan could be built from the structure; give entry and stop."
    return [
        (
            "size_trade",
            {"entry": plan_["entry"], "stop": plan_["stop"], "symbol": req.symbol, "levels_from": "plan", **extra},
        )
    ]


def _monte_carlo(req: Request, results: dict[str, Any]) -> list[Call] | str:
    if "monte_carlo" in results:
        return render.monte_carlo(results["monte_carlo"])
    typed = dict(req.size_args)
    if "win_rate" not in typed or "payoff" not in typed:
        return "Give a win rate and a payoff, e.g.: monte carlo win rate 45% payoff 2 risk 1% 100 trades"
    args: dict[str, Any] = {"win_rate": typed["win_rate"], "payoff": typed["payoff"]}
    if "risk_pct" in typed:
        args["risk_pct"] = typed["risk_pct"]
    for key in ("trades", "paths"):
        if key in typed:
            args[key] = int(float(typed[key]))  # type: ignore[arg-type]
    return [("monte_carlo", args)]


def _order(req: Request, results: dict[str, Any]) -> list[Call] | str:
    if "propose_order" in results:
        return str(results["propose_order"].get("summary", "Order proposed."))
    if not req.symbol:
        return "Which position? For example: close half my sol long"
    action = {"close": "close", "set_stop": "set_stop", "set_tp": "set_take_profit", "breakeven": "move_stop_breakeven"}
    args: dict[str, Any] = {"symbol": req.symbol, "action": action[req.kind]}
    if req.kind == "close":
        args["close_pct"] = req.pct or 100.0
    if req.side:
        args["side"] = req.side
    if req.kind in ("set_stop", "set_tp"):
        if req.price is not None:
            args["price"] = req.price
        elif req.offset is not None:
            level = _relative_level(req, results)
            if not isinstance(level, tuple):
                return level
            args["price"], side = level
            if side:
                args["side"] = side
        else:
            what = "stop" if req.kind == "set_stop" else "tp"
            return f"At what price? For example: set {what} 230 on my {req.symbol.lower()} long"
    return [("propose_order", args)]


def _entry(req: Request, results: dict[str, Any]) -> list[Call] | str:
    if "propose_order" in results:
        return str(results["propose_order"].get("summary", "Order proposed."))
    args = dict(req.entry_args)
    if (relative := args.pop("relative_stop", None)) is not None:
        return (
            f"An entry's stop is a price or the structural one, not {relative!r}: write `stop` and the price, "
            "or `stop auto` for the structural stop."
        )
    if "symbol" not in args:
        return f"Which symbol? For example: {ENTRY_EXAMPLES[0]}"
    if "amount" not in args and "risk_pct" not in args:
        return f"How much? A size ({args.get('side', 'long')} 0.1 {str(args['symbol']).lower()}) or a risk (1%)."
    return [("propose_order", {**args, "action": "open"})]


def _relative_level(req: Request, results: dict[str, Any]) -> tuple[float, str | None] | list[Call] | str:
    """The price of "2% below entry" / "10 above the price": (price, position side), the data still needed,
    or a question when the anchor is missing or there is no such position."""
    assert req.symbol is not None and req.offset is not None
    what = "stop" if req.kind == "set_stop" else "tp"
    if req.anchor is None:
        direction = "below" if req.offset < 0 else "above"
        return (
            f"{abs(req.offset):g}{'%' if req.offset_pct else ''} {direction} what: your entry or the current price? "
            f"For example: set {what} {abs(req.offset):g}{'%' if req.offset_pct else ''} {direction} entry on my "
            f"{req.symbol.lower()} long"
        )
    side: str | None = None
    if req.anchor == "entry":
        if "get_positions" not in results:
            return [("get_positions", {})]
        mine = [
            p
            for p in results["get_positions"].get("positions", [])
            if str(p.get("symbol", "")).split("/")[0] == req.symbol and req.side in (None, p.get("side"))
        ]
        if not mine:
            wanted = f"{req.symbol} {req.side}" if req.side else req.symbol
            return f"There is no open {wanted} position to set a {what} on."
        base, side = float(mine[0]["entry"]), str(mine[0]["side"])
    else:
        if "get_price" not in results:
            return [("get_price", {"symbol": req.symbol})]
        base = float(results["get_price"]["last"])
    level = base * (1 + req.offset / 100) if req.offset_pct else base + req.offset
    if level <= 0:
        return f"That would put the {what} at {level:g}; give a smaller distance."
    return float(num(level) or 0.0), side


def _analyze(req: Request, results: dict[str, Any]) -> list[Call] | str:
    if not req.symbol:
        return _ask_symbol("analyze")
    tf = req.timeframe or "1h"
    if "get_structure" not in results:
        return [
            ("get_market_overview", {"symbol": req.symbol}),
            ("get_structure", {"symbol": req.symbol, "timeframe": tf}),
        ]
    s = results["get_structure"]
    plan_ = s["plans"].get(render.favoured_side(s, req.side))
    if plan_ and "size_trade" not in results:
        return [
            (
                "size_trade",
                {"entry": plan_["entry"], "stop": plan_["stop"], "symbol": req.symbol, "levels_from": "plan"},
            )
        ]
    return render.analysis(s, results.get("get_market_overview"), results.get("size_trade"), req.side)
