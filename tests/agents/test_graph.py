"""The analyst graph with a scripted chat model: tool-call turns, streaming, validation errors, history."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agents.history import model_history
from bastion.app import Services
from tests.agents.helpers import chat_on, ctx, executions
from tests.agents.scripted import ScriptedChatModel, call


def _price_answer(messages: list) -> AIMessage:
    data = json.loads(next(m for m in reversed(messages) if isinstance(m, ToolMessage)).content)
    return AIMessage(content=f"BTC is at {data['last']:,.0f} (simulated data).")


async def test_tool_call_turn_streams_a_grounded_answer(services: Services, user_id: int) -> None:
    model = ScriptedChatModel(script=[AIMessage("", tool_calls=[call("get_price", {"symbol": "btc"})]), _price_answer])
    tokens: list[str] = []
    async with chat_on(services, model) as chat:
        reply = await chat.ask(ctx(user_id), "th-1", "what's the btc price?", on_token=tokens.append)
    assert "get_price" in model.bound and "propose_order" in model.bound
    assert reply.text.startswith("BTC is at ") and reply.approval is None
    assert reply.grounding == {"ok": True, "checked": 1}
    assert "".join(tokens) == reply.text and len(tokens) > 3  # streamed word by word
    tool_msg = model.seen[1][-1]
    assert isinstance(tool_msg, ToolMessage) and json.loads(tool_msg.content)["simulated"] is True
    assert model.seen[0][0].type == "system" and "Never invent" in model.seen[0][0].content


async def test_invalid_arguments_go_back_to_the_model(services: Services, user_id: int) -> None:
    model = ScriptedChatModel(
        script=[
            AIMessage("", tool_calls=[call("get_structure", {"symbol": "eth", "timeframe": "3h"}, "c1")]),
            AIMessage("", tool_calls=[call("launch_rocket", {}, "c2")]),
            AIMessage("Timeframe 3h is not supported."),
        ]
    )
    async with chat_on(services, model) as chat:
        reply = await chat.ask(ctx(user_id), "th-2", "levels eth 3h")
    first_error = model.seen[1][-1]
    assert isinstance(first_error, ToolMessage) and first_error.status == "error"
    assert "Invalid arguments for get_structure: timeframe" in first_error.content
    assert "Unknown tool 'launch_rocket'" in model.seen[2][-1].content
    assert reply.text == "Timeframe 3h is not supported."


async def test_history_is_kept_per_thread_and_trimmed(services: Services, user_id: int) -> None:
    model = ScriptedChatModel(script=[AIMessage(f"answer {i}") for i in range(4)])
    async with chat_on(services, model) as chat:
        await chat.ask(ctx(user_id), "th-a", "first question " + "padding " * 200)
        await chat.ask(ctx(user_id), "th-a", "second question")
        await chat.ask(ctx(user_id), "th-b", "other thread")
    second = [m.content for m in model.seen[1]]
    assert "second question" in second and "answer 0" in second  # same thread remembers
    assert all("first question" not in str(c) for c in model.seen[2])  # another thread does not


def test_history_is_trimmed_to_the_token_budget_with_tool_pairs_intact() -> None:
    turns = []
    for i in range(30):
        turns += [
            HumanMessage(f"question {i} " + "word " * 40),
            AIMessage("", tool_calls=[call("get_price", {"symbol": "btc"}, f"c{i}")]),
            ToolMessage('{"last": 1}', tool_call_id=f"c{i}"),
            AIMessage(f"answer {i}"),
        ]
    kept = model_history(turns, budget=300)
    assert kept[0].type == "human" and kept[-1].content == "answer 29"
    assert 4 <= len(kept) < 20
    dangling = model_history([HumanMessage("q"), AIMessage("", tool_calls=[call("get_price", {}, "x")])], 300)
    assert isinstance(dangling[-1], ToolMessage) and dangling[-1].tool_call_id == "x"


async def test_model_failure_is_a_short_message(services: Services, user_id: int) -> None:
    def boom(messages: list) -> AIMessage:
        raise TimeoutError("slow")

    model = ScriptedChatModel(script=[boom])
    async with chat_on(services, model) as chat:
        reply = await chat.ask(ctx(user_id), "th-3", "analyse btc")
    assert "did not answer" in reply.text and "Traceback" not in reply.text
    assert await executions(services) == 0
