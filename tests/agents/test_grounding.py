"""The grounding check: invented prices are caught (one correction, then removal); derived figures pass."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agents.grounding import MARK, REMOVED_NOTE, check_answer
from bastion.app import Services
from tests.agents.helpers import chat_on, ctx
from tests.agents.scripted import ScriptedChatModel, call

TOOL = json.dumps({"last": 64250.5, "plans": {"long": {"entry": 64250.5, "stop": 63100.0, "t1": 66550.0}}})


def test_invented_price_is_caught_and_derived_figures_pass() -> None:
    answer = (
        "BTC trades at 64,250 (simulated). Long from 64,250.5 with the stop at 63,100 (1,150.5 below entry, 1.79%), "
        "T1 66,550 for 2.0R; R:R 2:1. Grade 3 level, 4 touches on the 4h as of 2026-11-22 03:00, 10x max."
    )
    assert check_answer(answer, [TOOL]).ok
    bad = check_answer(answer + " Resistance at 65,900.", [TOOL])
    assert bad.unsupported == ["65,900"]
    assert check_answer("BTC is at 64,330", [TOOL]).unsupported == ["64,330"]  # 0.12 % off: too far
    assert check_answer("BTC is at 64,300", [TOOL]).ok  # within 0.1 %


def _after_price(text: str):
    def step(messages: list) -> AIMessage:
        assert any(isinstance(m, ToolMessage) for m in messages)
        return AIMessage(text)

    return step


async def test_one_correction_then_unsupported_figures_are_removed(services: Services, user_id: int) -> None:
    model = ScriptedChatModel(
        script=[
            AIMessage("", tool_calls=[call("get_price", {"symbol": "btc"}, "p1")]),
            _after_price("BTC is at 12,345.67 and heading to 99,999."),
            _after_price("Corrected: BTC is at 12,345.67."),
        ]
    )
    async with chat_on(services, model) as chat:
        reply = await chat.ask(ctx(user_id), "g1", "btc price?")
    nudge = model.seen[2][-1]
    assert isinstance(nudge, HumanMessage) and "12,345.67" in nudge.content and "99,999" in nudge.content
    assert reply.text == f"Corrected: BTC is at {MARK}.\n\n{REMOVED_NOTE}"
    assert reply.grounding == {"ok": False, "removed": ["12,345.67"]}


async def test_a_corrected_answer_is_accepted(services: Services, user_id: int) -> None:
    def cite(messages: list) -> AIMessage:
        last = json.loads(next(m for m in reversed(messages) if isinstance(m, ToolMessage)).content)["last"]
        return AIMessage(f"BTC is at {last:,.1f}.")

    model = ScriptedChatModel(
        script=[
            AIMessage("", tool_calls=[call("get_price", {"symbol": "btc"}, "p1")]),
            AIMessage("BTC is 1,000.5"),
            cite,
        ]
    )
    async with chat_on(services, model) as chat:
        reply = await chat.ask(ctx(user_id), "g2", "btc price?")
    assert reply.grounding is not None and reply.grounding["ok"] is True
    assert reply.text.startswith("BTC is at ") and MARK not in reply.text


async def test_offline_answers_pass_grounding(services: Services, user_id: int) -> None:
    async with chat_on(services) as chat:
        for text in ("analyze btc", "levels sol 4h", "price eth", "size btc entry 60000 stop 59000"):
            reply = await chat.ask(ctx(user_id), "g3", text)
            assert reply.grounding is not None and reply.grounding["ok"] is True, (text, reply)
            assert reply.text.startswith("[offline model]")


def test_a_price_rounded_to_its_tick_is_grounded_and_a_different_one_is_not() -> None:
    sources = ['{"liquidation": 1.14593, "entry": 229.23}']
    assert check_answer("liquidation 1.15", sources).ok  # the data at a 0.01 tick
    assert check_answer("entry 229.2", sources).ok
    assert check_answer("liquidation 1.16", sources).unsupported == ["1.16"]
    assert check_answer("liquidation 1.1459", sources).ok
    assert check_answer("liquidation 1.1480", sources).unsupported == ["1.1480"]  # 0.18 %: neither
