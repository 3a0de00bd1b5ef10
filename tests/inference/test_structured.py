"""JSON decisions: valid answers become models; invalid JSON and schema violations become InvalidModelOutput."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from inference import InvalidModelOutput, ModelClient, RiskDecisionOut, response_format_for, strict_json_schema
from inference.errors import RAW_OUTPUT_LIMIT
from inference.schemas import RISK_ACTIONS
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.replies import Reply

USER = [{"role": "user", "content": "SOL long 3x, entry 142.0, stop 136.5, price 149.2"}]
VALID: dict[str, Any] = {
    "action": "TP_PARTIAL",
    "confidence": 0.82,
    "reasoning": "Price 149.2 is 0.4% below T1 at 149.8 (grade 3 resistance) with 3x leverage.",
    "close_pct": 40.0,
    "new_stop": None,
    "next_check_minutes": 15,
}


async def test_valid_json_becomes_the_model(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.json(VALID))
    decision = await client.complete_json("risk", USER, RiskDecisionOut)
    assert decision == RiskDecisionOut(**VALID)


async def test_optional_fields_may_be_omitted_by_lenient_servers(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.json({"action": "HOLD", "confidence": 0.7, "reasoning": "Structure holds above 140.1."}))
    decision = await client.complete_json("risk", USER, RiskDecisionOut)
    assert (decision.action, decision.close_pct, decision.new_stop, decision.next_check_minutes) == (
        "HOLD",
        None,
        None,
        None,
    )


async def test_json_in_a_markdown_fence_is_accepted(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.raw("```json\n" + json.dumps(VALID) + "\n```"))
    assert (await client.complete_json("risk", USER, RiskDecisionOut)).action == "TP_PARTIAL"


@pytest.mark.parametrize(
    "raw",
    [
        "I would hold this position.",
        '{"action": "HOLD", "confidence": 0.8,',
        "",
        "[1, 2, 3]",
    ],
)
async def test_invalid_json_is_invalid_output_with_the_raw_text(
    client: ModelClient, server: FakeOpenAIServer, raw: str
) -> None:
    server.script(Reply.raw(raw))
    with pytest.raises(InvalidModelOutput) as caught:
        await client.complete_json("risk", USER, RiskDecisionOut)
    assert caught.value.raw == raw
    assert len(server.chat_bodies) == 1  # an invalid answer is not retried here; the caller decides


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": "BUY_MORE"}, "action"),
        ({"action": "hold"}, "action"),
        ({"confidence": 1.7}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"close_pct": 140.0}, "close_pct"),
        ({"new_stop": -5.0, "action": "ADJUST_STOP"}, "new_stop"),
        ({"next_check_minutes": 0}, "next_check_minutes"),
        ({"reasoning": ""}, "reasoning"),
        ({"leverage": 10}, "leverage"),
        ({"close_pct": None}, "needs close_pct"),
        ({"action": "TRAIL_STOP"}, "needs new_stop"),
    ],
)
async def test_schema_violation_is_invalid_output(
    client: ModelClient, server: FakeOpenAIServer, change: dict[str, Any], field: str
) -> None:
    server.script(Reply.json({**VALID, **change}))
    with pytest.raises(InvalidModelOutput) as caught:
        await client.complete_json("risk", USER, RiskDecisionOut)
    assert field in caught.value.detail
    assert "RiskDecisionOut" in str(caught.value)
    assert json.loads(caught.value.raw) == {**VALID, **change}


async def test_missing_required_field_is_invalid_output(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.json({"action": "HOLD", "reasoning": "no confidence given"}))
    with pytest.raises(InvalidModelOutput, match="does not match") as caught:
        await client.complete_json("risk", USER, RiskDecisionOut)
    assert "confidence" in caught.value.detail


async def test_answer_cut_off_at_max_tokens_is_invalid_output(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.text('{"action": "HOLD", "confidence": 0.8, "reason', finish_reason="length"))
    with pytest.raises(InvalidModelOutput, match="cut off") as caught:
        await client.complete_json("risk", USER, RiskDecisionOut)
    assert "BASTION_MODEL__MAX_TOKENS" in caught.value.detail


async def test_raw_text_kept_on_the_error_is_truncated(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.raw("x" * (RAW_OUTPUT_LIMIT * 3)))
    with pytest.raises(InvalidModelOutput) as caught:
        await client.complete_json("risk", USER, RiskDecisionOut)
    assert caught.value.raw.startswith("x" * RAW_OUTPUT_LIMIT)
    assert len(caught.value.raw) < RAW_OUTPUT_LIMIT + 50
    assert f"{RAW_OUTPUT_LIMIT * 2} more characters" in caught.value.raw


def test_risk_schema_is_strict_mode_compatible() -> None:
    schema = RiskDecisionOut.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"] == list(schema["properties"])
    assert schema["properties"]["action"]["enum"] == list(RISK_ACTIONS)
    assert len(RISK_ACTIONS) == 9
    for name in ("close_pct", "new_stop", "next_check_minutes"):
        prop = schema["properties"][name]
        assert {"type": "null"} in prop["anyOf"], name
        assert "default" not in prop, name
    assert "default" not in json.dumps(schema)


class _Level(BaseModel):
    price: float
    grade: int | None = None


class _Levels(BaseModel):
    model_config = ConfigDict(title="Levels")
    supports: list[_Level] = Field(default_factory=list)
    note: str | None = None


def test_strict_schema_closes_nested_objects_and_definitions() -> None:
    schema = response_format_for(_Levels)["json_schema"]["schema"]
    level = schema["$defs"]["_Level"]
    assert level["additionalProperties"] is False and level["required"] == ["price", "grade"]
    assert schema["required"] == ["supports", "note"] and schema["additionalProperties"] is False
    assert "default" not in json.dumps(schema)
    # The input is left untouched: pydantic's cached schema must not be mutated.
    original = _Levels.model_json_schema()
    strict_json_schema(original)
    assert "additionalProperties" not in original
