"""The model's opinion over real HTTP (local OpenAI-protocol server), merged under the hard rules."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from bastion.settings import ModelSettings
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.evaluate import evaluate
from engine.risk.merge import merge
from engine.risk.opinion import RiskOpinion, build_risk_context
from inference import ModelClient
from tests.fakes.openai_server import FakeOpenAIServer, Reply

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def ctx(price: float = 103.0, **pos: object) -> RiskContext:
    position = {
        "symbol": "SOL/USDT:USDT",
        "side": "long",
        "entry": 100.0,
        "size": 10.0,
        "stop": 96.0,
        "targets": [110.0],
    } | pos
    return RiskContext(position=RiskPosition(**position), market=MarketView(price=price, atr=2.0, now=NOW))


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(models=["bastion"]) as srv:
        yield srv


@pytest.fixture
async def opinion(server: FakeOpenAIServer) -> AsyncIterator[RiskOpinion]:
    settings = ModelSettings(base_url=server.base_url, api_key=SecretStr("k"), risk_model="bastion", timeout_s=5)
    async with ModelClient(settings) as client:
        yield RiskOpinion(client, timeout_s=2.0)  # wide enough for a loaded CI machine's first answer


async def decide(opinion: RiskOpinion, context: RiskContext):
    proposal, error = await opinion.ask(context)
    return merge(context, evaluate(context), proposal, error)


async def test_valid_model_decision_is_used(server: FakeOpenAIServer, opinion: RiskOpinion) -> None:
    server.script(
        Reply.json(
            {
                "action": "TP_PARTIAL",
                "confidence": 0.72,
                "reasoning": "Approaching 104 resistance",
                "close_pct": 30,
                "new_stop": None,
                "next_check_minutes": 30,
            }
        )
    )
    decision = await decide(opinion, ctx())
    assert (decision.action, decision.close_pct, decision.source) == ("TP_PARTIAL", 30.0, "merged")
    body = server.last_body
    assert body["temperature"] == 0.3 and body["model"] == "bastion"
    assert body["response_format"]["type"] == "json_schema" and "guided_json" not in body
    assert "entry: 100" in body["messages"][1]["content"]


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (Reply.raw("I think you should hold."), "model error"),
        (
            Reply.json(
                {
                    "action": "PANIC_SELL",
                    "confidence": 0.9,
                    "reasoning": "x",
                    "close_pct": None,
                    "new_stop": None,
                    "next_check_minutes": None,
                }
            ),
            "model error",
        ),
        (
            Reply.json(
                {
                    "action": "TRAIL_STOP",
                    "confidence": 0.9,
                    "reasoning": "tighten",
                    "close_pct": None,
                    "new_stop": 105.0,
                    "next_check_minutes": None,
                }
            ),
            "stop must be below the price",
        ),
        (
            Reply.json(
                {
                    "action": "HOLD",
                    "confidence": 1.7,
                    "reasoning": "x",
                    "close_pct": None,
                    "new_stop": None,
                    "next_check_minutes": None,
                }
            ),
            "model error",
        ),
    ],
    ids=["invalid-json", "unknown-action", "stop-wrong-side", "confidence-out-of-range"],
)
async def test_bad_model_output_leaves_the_rules_decision(
    server: FakeOpenAIServer, opinion: RiskOpinion, reply: Reply, why: str
) -> None:
    server.script(reply)
    context = ctx()
    decision = await decide(opinion, context)
    rules = evaluate(context)
    assert (decision.action, decision.rule, decision.source) == (rules.action, rules.rule, "rules")
    assert any(why in note for note in decision.notes), decision.notes


async def test_slow_model_times_out_and_rules_stand(server: FakeOpenAIServer, opinion: RiskOpinion) -> None:
    server.script(
        Reply.delay(
            8.0,
            Reply.json(
                {
                    "action": "EXIT_FULL",
                    "confidence": 0.9,
                    "reasoning": "late",
                    "close_pct": None,
                    "new_stop": None,
                    "next_check_minutes": None,
                }
            ),
        )
    )
    started = time.monotonic()
    decision = await decide(opinion, ctx())
    assert time.monotonic() - started < 6.0
    assert decision.source == "rules" and any("timed out" in n for n in decision.notes)


async def test_unreachable_model_is_recorded(opinion: RiskOpinion, server: FakeOpenAIServer) -> None:
    server.script(Reply.status(503))
    decision = await decide(opinion, ctx())
    assert decision.source == "rules" and any("model error" in n for n in decision.notes)


async def test_hard_rule_beats_the_model(server: FakeOpenAIServer, opinion: RiskOpinion) -> None:
    server.script(
        Reply.json(
            {
                "action": "HOLD",
                "confidence": 0.95,
                "reasoning": "it will bounce",
                "close_pct": None,
                "new_stop": None,
                "next_check_minutes": None,
            }
        )
    )
    decision = await decide(opinion, ctx(price=95.0))  # stop 96 breached
    assert decision.action == "EMERGENCY_EXIT" and decision.hard
    assert any("overruled" in n for n in decision.notes)


def test_context_has_every_number_the_rules_use() -> None:
    text = build_risk_context(ctx(stop=None, leverage=5))
    for fragment in ("side: long", "leverage: 5x", "stop: none", "T1 110", "price: 103", "atr14: 2", "r_multiple: n/a"):
        assert fragment in text
