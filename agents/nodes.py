"""The conversational nodes: agent (model call), read-only tools, grounding check."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import openai
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from agents import grounding
from agents.deps import AgentDeps
from agents.history import model_history
from agents.state import GROUNDING_NUDGE, AgentState, TurnContext, from_dicts, to_dicts, turn_start
from inference.errors import InferenceError
from tools.agent_tools import PROPOSE_ORDER, ToolContext

log = logging.getLogger(__name__)
FIXED = "bastion_fixed"  # marks answers written by the graph itself: not model output, not grounding-checked


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


async def _call_model(deps: AgentDeps, messages: list[BaseMessage]) -> AIMessage:
    writer = get_stream_writer()
    full: AIMessageChunk | None = None
    async for chunk in deps.bound_model.astream(messages):
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


def make_agent_node(deps: AgentDeps) -> Any:
    """The model call: system prompt + token-budgeted history; failures become a short answer."""

    async def agent(state: AgentState) -> dict[str, Any]:
        steps = state.get("steps", 0)
        if steps >= deps.max_steps:
            msg = fixed_answer("I could not finish this with the tools available; please ask more specifically.")
            return {"messages": to_dicts([msg])}
        history = model_history(from_dicts(state.get("messages", [])), deps.token_budget)
        try:
            ai = await _call_model(deps, [SystemMessage(deps.system_prompt), *history])
        except Exception as exc:
            log.warning("analyst model failed: %r", exc, exc_info=not isinstance(exc, openai.APIError))
            ai = fixed_answer(model_error_text(exc, deps.timeout_s))
        return {"messages": to_dicts([ai]), "steps": steps + 1}

    return agent


def last_ai(state: AgentState) -> AIMessage | None:
    """The latest model message of the state."""
    for m in reversed(from_dicts(state.get("messages", [])[-12:])):
        if isinstance(m, AIMessage):
            return m
    return None


def answered_ids(state: AgentState) -> set[str]:
    """Tool call ids that already have a result in this turn."""
    msgs = from_dicts(state.get("messages", [])[-60:])
    return {m.tool_call_id for m in msgs[turn_start(msgs) :] if isinstance(m, ToolMessage)}


def make_tools_node(deps: AgentDeps) -> Any:
    """Runs the read-only tool calls (concurrently); bad calls are answered with an error for the model."""

    async def tools(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        ai = last_ai(state)
        assert ai is not None
        ctx = ToolContext(user_id=runtime.context.user_id, store=runtime.store)  # type: ignore[arg-type]
        out: list[BaseMessage] = []
        proposals = [c for c in ai.tool_calls if c["name"] == PROPOSE_ORDER]
        for extra in proposals[1:]:
            out.append(_error(extra["id"], PROPOSE_ORDER, "One order proposal at a time; propose the others later."))
        for bad in ai.invalid_tool_calls:
            detail = bad.get("error") or "the arguments are not valid JSON"
            out.append(_error(bad.get("id") or "", bad.get("name") or "unknown", f"Invalid tool call: {detail}."))
        calls = [c for c in ai.tool_calls if c["name"] != PROPOSE_ORDER]
        results = await asyncio.gather(*(deps.toolkit.run(c["name"], c["args"], ctx) for c in calls))
        attachments = list(state.get("attachments") or [])
        for call, res in zip(calls, results, strict=True):
            out.append(
                ToolMessage(
                    res.content, tool_call_id=call["id"], name=call["name"], status="error" if res.error else "success"
                )
            )
            if res.data and isinstance(res.data.get("chart"), str):
                attachments.append(res.data["chart"])
        return {"messages": to_dicts(out), "attachments": attachments}

    return tools


def _error(call_id: str, name: str, text: str) -> ToolMessage:
    return ToolMessage(text, tool_call_id=call_id, name=name, status="error")


def make_ground_node(deps: AgentDeps) -> Any:
    """Checks the final answer's figures against this turn's tool data: one correction, then removal."""

    async def ground(state: AgentState) -> dict[str, Any]:
        messages = from_dicts(state.get("messages", []))
        ai = messages[-1] if messages else None
        if not isinstance(ai, AIMessage) or ai.additional_kwargs.get(FIXED) or not isinstance(ai.content, str):
            return {}
        start = turn_start(messages)
        sources = [
            str(m.content)
            for m in messages[start:]
            if isinstance(m, ToolMessage) or (isinstance(m, HumanMessage) and m.name != GROUNDING_NUDGE)
        ]
        result = grounding.check_answer(ai.content, sources)
        if result.ok:
            return {"grounding": {"ok": True, "checked": len(result.checked)}}
        if state.get("corrections", 0) < 1:
            nudge = HumanMessage(grounding.correction_request(result.unsupported), name=GROUNDING_NUDGE)
            return {"messages": to_dicts([nudge]), "corrections": 1, "grounding": {"ok": False, "retry": True}}
        cleaned = ai.model_copy(update={"content": grounding.remove_unsupported(ai.content, result.unsupported)})
        return {
            "messages": to_dicts([cleaned]),
            "grounding": {"ok": False, "removed": result.unsupported},
        }

    return ground
