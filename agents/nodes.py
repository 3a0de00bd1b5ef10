"""The conversational nodes: agent (turn intake, model call, grounding check) and the read-only tools."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import openai
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import Command

from agents import grounding
from agents.deps import AgentDeps
from agents.history import model_history, stored_tail
from agents.state import (
    GROUNDING_NUDGE,
    AgentState,
    TurnContext,
    from_dicts,
    is_turn_start,
    to_dicts,
    turn_start_index,
)
from inference.errors import InferenceError
from storage.repositories import approvals as approvals_repo
from tools.agent_tools import PROPOSE_ORDER, ToolContext
from tools.agent_tools.registry import TRADER_ONLY_NOTICE

log = logging.getLogger(__name__)
FIXED = "bastion_fixed"  # marks answers written by the graph itself: not model output, not grounding-checked
SUPERSEDED = "The pending order was cancelled because the conversation moved on: no order was placed."
# Appended to the system prompt for a user without the trader permission (the tools offered already say so).
NO_TRADING_NOTE = (
    "This user has no trading access: you can show market data, structure, charts and sizing, but not their "
    "positions or balance, and you cannot propose orders. If they ask for those, tell them to ask an admin."
)


def fixed_answer(text: str) -> AIMessage:
    """An answer the graph wrote (errors, order results)."""
    return AIMessage(content=text, additional_kwargs={FIXED: True})


def model_error_text(exc: BaseException, timeout_s: float | None) -> str:
    """A short message for a model failure; the traceback stays in the log."""
    if isinstance(exc, InferenceError):
        return exc.user_message
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        limit = f" within {timeout_s:g} seconds" if timeout_s else ""
        return f"The language model did not answer{limit}. Try again, or use a command such as: price btc"
    if isinstance(exc, openai.APIConnectionError):
        return "The language model is not reachable right now; commands such as `price btc` still work."
    if isinstance(exc, openai.APIStatusError):
        return f"The language model refused the request (HTTP {exc.status_code}); commands still work."
    return "The language model failed to answer; commands such as `price btc` still work."


async def _call_model(deps: AgentDeps, messages: list[BaseMessage], may_trade: bool) -> AIMessage:
    if (direct := deps.direct_model) is not None:
        # A local deterministic model answers whole at once: nothing to stream (the reply carries the text), and
        # no chat-model callback layer around a function call.
        return direct.respond(messages)
    writer = get_stream_writer()
    full: AIMessageChunk | None = None
    async for chunk in deps.bound_for(may_trade).astream(messages):
        if isinstance(chunk, AIMessageChunk):
            full = chunk if full is None else full + chunk
            if isinstance(chunk.content, str) and chunk.content:
                writer({"token": chunk.content})
    if full is None:
        return AIMessage(content="")
    return AIMessage(
        content=full.content,
        tool_calls=full.tool_calls,
        invalid_tool_calls=full.invalid_tool_calls,
        response_metadata=full.response_metadata,
        id=full.id,
    )


def waiting_proposal(state: AgentState) -> dict[str, Any] | None:
    """The order proposal that still waits for its approval (checked by risk_check, not yet decided)."""
    pending = state.get("pending")
    if pending and pending.get("token") and not pending.get("decision"):
        return pending
    return None


async def supersede(deps: AgentDeps, pending: dict[str, Any], user_id: int) -> list[BaseMessage]:
    """Drop a waiting order because a new message arrived: its button stops working, its tool call gets a result."""
    async with deps.sessions.begin() as session:
        await approvals_repo.reject_approval(session, pending["token"], user_id)
    result = ToolMessage(SUPERSEDED, tool_call_id=pending["tool_call_id"], name=PROPOSE_ORDER)
    return [result, fixed_answer(SUPERSEDED)]


def _sources(stored: list[dict[str, Any]], new: list[BaseMessage]) -> list[str]:
    """This turn's tool results and the user's own words: what an answer's figures may come from."""
    start = next((i for i, m in enumerate(new) if isinstance(m, HumanMessage) and m.name != GROUNDING_NUDGE), None)
    earlier: list[str] = []
    if start is None:
        turn = stored[turn_start_index(stored) :]
        earlier = [str(m["data"].get("content")) for m in turn if m["type"] == "tool" or is_turn_start(m)]
    fresh = new[start or 0 :]
    return earlier + [
        str(m.content)
        for m in fresh
        if isinstance(m, ToolMessage) or (isinstance(m, HumanMessage) and m.name != GROUNDING_NUDGE)
    ]


def _grounded(state: AgentState, stored: list[dict[str, Any]], new: list[BaseMessage], ai: AIMessage) -> dict[str, Any]:
    """The answer checked against this turn's data: accepted, sent back once for correction, or cleaned."""
    if ai.additional_kwargs.get(FIXED) or not isinstance(ai.content, str):
        return {"messages": to_dicts([*new, ai])}
    result = grounding.check_answer(ai.content, _sources(stored, new))
    if result.ok:
        return {"messages": to_dicts([*new, ai]), "grounding": {"ok": True, "checked": len(result.checked)}}
    if state.get("corrections", 0) < 1:
        nudge = HumanMessage(grounding.correction_request(result.unsupported), name=GROUNDING_NUDGE)
        return {"messages": to_dicts([*new, ai, nudge]), "corrections": 1, "grounding": {"ok": False, "retry": True}}
    cleaned = ai.model_copy(update={"content": grounding.remove_unsupported(ai.content, result.unsupported)})
    return {"messages": to_dicts([*new, cleaned]), "grounding": {"ok": False, "removed": result.unsupported}}


def _earlier(deps: AgentDeps, stored: list[dict[str, Any]], new: list[BaseMessage]) -> list[BaseMessage]:
    """The stored messages the model gets before this step's new ones (parsed only as far as they are needed).

    A direct model answers from the current turn alone; other models get the token-budgeted history.
    """
    if deps.direct_model is None:
        return from_dicts(stored_tail(stored, deps.token_budget))
    if any(isinstance(m, HumanMessage) and m.name != GROUNDING_NUDGE for m in new):
        return []
    return from_dicts(stored[turn_start_index(stored) :])


def _inline(deps: AgentDeps, ai: AIMessage) -> bool:
    """Whether the agent node runs this message's tool calls itself (direct model, read-only calls only)."""
    if deps.direct_model is None or not ai.tool_calls or ai.invalid_tool_calls:
        return False
    return all(c["name"] != PROPOSE_ORDER for c in ai.tool_calls)


def make_agent_node(deps: AgentDeps) -> Any:
    """The model call: takes in the turn's message, calls the model on the token-budgeted history, and checks
    a final answer's figures against this turn's tool data (one correction, then removal).

    The grounding check runs here rather than in a node of its own, and a direct (local, deterministic) model's
    read-only tool calls run here too: the offline model answers most turns in one graph step. Order proposals
    always leave through the tools node to risk_check and the approval step.
    """

    # The same two prompts every turn: built once with the graph.
    prompts = {
        True: SystemMessage(deps.system_prompt),
        False: SystemMessage(f"{deps.system_prompt}\n\n{NO_TRADING_NOTE}"),
    }

    async def agent(state: AgentState, runtime: Runtime[TurnContext]) -> Command[str]:
        stored = state.get("messages") or []
        new: list[BaseMessage] = []
        update: dict[str, Any] = {}
        text = state.get("inbox")
        if text is not None:
            if (waiting := waiting_proposal(state)) is not None:
                new += await supersede(deps, waiting, runtime.context.user_id)
            new.append(HumanMessage(text, id=uuid.uuid4().hex))
            update = {"inbox": None, "pending": None}
        earlier = _earlier(deps, stored, new)
        steps = state.get("steps", 0)
        attachments: list[str] = []
        may_trade = runtime.context.may_trade
        system = prompts[may_trade]
        while True:
            if steps >= deps.max_steps:
                ai = fixed_answer("I could not finish this with the tools available; please ask more specifically.")
                break
            history = [*earlier, *new] if deps.direct_model else model_history([*earlier, *new], deps.token_budget)
            try:
                ai = await _call_model(deps, [system, *history], may_trade)
            except Exception as exc:
                log.warning("analyst model failed: %r", exc, exc_info=not isinstance(exc, openai.APIError))
                ai = fixed_answer(model_error_text(exc, deps.timeout_s))
            steps += 1
            if not _inline(deps, ai):
                break
            results, charts = await run_tool_calls(deps, ai, runtime)
            new += [ai, *results]
            attachments += charts
        update["steps"] = steps
        if attachments:
            update["attachments"] = [*(state.get("attachments") or []), *attachments]
        if ai.tool_calls or ai.invalid_tool_calls or not deps.grounding:
            update["messages"] = to_dicts([*new, ai])
        else:
            update.update(_grounded(state, stored, new, ai))
        return _route(update)

    return agent


def _route(update: dict[str, Any]) -> Command[str]:
    """The agent's update and where the turn goes next: the tools node for tool calls, the agent again for a
    grounding correction, else the end (no goto: the agent node has no outgoing edge).

    The node decides from its own last message, which is the state's last once the update is merged (every message
    it writes is new, so none replaces an older one). A conditional edge would read a fresh copy of the whole state
    (the message list merged a second time) and run its function as a traced runnable in a task of its own.
    """
    last = update["messages"][-1]
    if last["type"] == "ai" and (last["data"].get("tool_calls") or last["data"].get("invalid_tool_calls")):
        return Command(update=update, goto="tools")
    if last["type"] == "human" and last["data"].get("name") == GROUNDING_NUDGE:
        return Command(update=update, goto="agent")  # the answer goes back once for correction
    return Command(update=update)


def last_ai(state: AgentState) -> AIMessage | None:
    """The latest model message of the state."""
    for m in reversed(state.get("messages", [])[-12:]):
        if m["type"] == "ai":
            found = from_dicts([m])[0]
            return found if isinstance(found, AIMessage) else None
    return None


def answered_ids(state: AgentState) -> set[str]:
    """Tool call ids that already have a result in this turn."""
    msgs = state.get("messages", [])
    return {str(m["data"]["tool_call_id"]) for m in msgs[turn_start_index(msgs) :] if m["type"] == "tool"}


async def run_tool_calls(
    deps: AgentDeps, ai: AIMessage, runtime: Runtime[TurnContext]
) -> tuple[list[ToolMessage], list[str]]:
    """Results of a model message's read-only tool calls (run concurrently) and the charts they drew.

    Bad calls are answered with an error for the model; propose_order calls are left to risk_check
    (a second proposal in one message is refused). A user without the trader permission gets a refusal for
    the personal tools and for propose_order, whatever the model asked for.
    """
    ctx = ToolContext(user_id=runtime.context.user_id, store=runtime.store)
    may_trade = runtime.context.may_trade
    out: list[ToolMessage] = []
    refused = [c for c in ai.tool_calls if not deps.toolkit.allowed(c["name"], may_trade)]
    for call in refused:
        out.append(_error(call["id"] or "", call["name"], TRADER_ONLY_NOTICE))
    allowed = [c for c in ai.tool_calls if deps.toolkit.allowed(c["name"], may_trade)]
    proposals = [c for c in allowed if c["name"] == PROPOSE_ORDER]
    for extra in proposals[1:]:
        out.append(_error(extra["id"] or "", PROPOSE_ORDER, "One order proposal at a time; propose the others later."))
    for bad in ai.invalid_tool_calls:
        detail = bad.get("error") or "the arguments are not valid JSON"
        out.append(_error(bad.get("id") or "", bad.get("name") or "unknown", f"Invalid tool call: {detail}."))
    calls = [c for c in allowed if c["name"] != PROPOSE_ORDER]
    if len(calls) == 1:  # most steps make one call: awaited here, without a task and a gather future for it
        results = [await deps.toolkit.run(calls[0]["name"], calls[0]["args"], ctx)]
    else:
        results = await asyncio.gather(*(deps.toolkit.run(c["name"], c["args"], ctx) for c in calls))
    charts: list[str] = []
    for call, res in zip(calls, results, strict=True):
        status = "error" if res.error else "success"
        out.append(ToolMessage(res.content, tool_call_id=call["id"], name=call["name"], status=status))
        if res.data and isinstance(res.data.get("chart"), str):
            charts.append(res.data["chart"])
    return out, charts


def make_tools_node(deps: AgentDeps) -> Any:
    """Runs the read-only tool calls of the model's last message."""

    async def tools(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        ai = last_ai(state)
        assert ai is not None
        out, charts = await run_tool_calls(deps, ai, runtime)
        return {"messages": to_dicts(out), "attachments": [*(state.get("attachments") or []), *charts]}

    return tools


def _error(call_id: str, name: str, text: str) -> ToolMessage:
    return ToolMessage(text, tool_call_id=call_id, name=name, status="error")
