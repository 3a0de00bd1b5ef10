"""The client's requests per task, its answers and tool calls, and its configuration errors, over real HTTP."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from inference import InvalidModelOutput, ModelClient, ModelConfigError, RiskDecisionOut
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.replies import Reply
from tests.inference.conftest import ANALYST, API_KEY, FAST_RETRY, RISK, SleepRecorder, model_settings

USER = [{"role": "user", "content": "How is BTC looking?"}]
PRICE_TOOL = {
    "type": "function",
    "function": {
        "name": "get_price",
        "description": "Last price of a symbol.",
        "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
    },
}


@pytest.mark.parametrize(("task", "model", "temperature"), [("analyst", ANALYST, 0.6), ("risk", RISK, 0.3)])
async def test_request_carries_the_task_parameters(
    client: ModelClient, server: FakeOpenAIServer, task: str, model: str, temperature: float
) -> None:
    server.script(Reply.text("fine"))
    await client.complete(task, USER)  # type: ignore[arg-type]
    body = server.last_body
    assert body["model"] == model
    assert body["temperature"] == temperature
    assert body["max_tokens"] == 321
    assert body["messages"] == USER
    assert "response_format" not in body and "tools" not in body
    assert server.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"


async def test_json_request_asks_for_a_strict_json_schema_never_guided_json(
    client: ModelClient, server: FakeOpenAIServer
) -> None:
    server.script(Reply.json({"action": "HOLD", "confidence": 0.8, "reasoning": "structure holds"}))
    await client.complete_json("risk", USER, RiskDecisionOut)
    body = server.last_body
    assert "guided_json" not in body and "guided_json" not in body.get("extra_body", {})
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "RiskDecisionOut"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"]) == set(RiskDecisionOut.model_fields)
    assert body["model"] == RISK and body["temperature"] == 0.3


async def test_plain_answer_has_text_finish_reason_usage_and_latency(
    client: ModelClient, server: FakeOpenAIServer
) -> None:
    server.script(Reply.text("BTC holds the 4h support at 64,000."))
    done = await client.complete("analyst", USER)
    assert done.text == "BTC holds the 4h support at 64,000."
    assert done.tool_calls == ()
    assert done.finish_reason == "stop"
    assert done.model == ANALYST
    assert done.usage is not None and done.usage.completion_tokens == 7
    assert done.usage.total_tokens == done.usage.prompt_tokens + 7
    assert 0 < done.latency_s < 2


async def test_tool_calls_are_parsed_and_tools_are_sent(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(
        Reply.tool_calls(
            ("get_price", {"symbol": "BTC"}),
            ("get_levels", {"symbol": "ETH", "timeframes": ["1h", "4h"]}),
            ids=["call_1", "call_2"],
        )
    )
    done = await client.complete("analyst", USER, tools=[PRICE_TOOL], tool_choice="auto")
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [
        ("call_1", "get_price", {"symbol": "BTC"}),
        ("call_2", "get_levels", {"symbol": "ETH", "timeframes": ["1h", "4h"]}),
    ]
    assert done.finish_reason == "tool_calls"
    assert server.last_body["tools"] == [PRICE_TOOL]
    assert server.last_body["tool_choice"] == "auto"


async def test_tool_call_with_broken_arguments_is_invalid_output(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.tool_call("get_price", '{"symbol": "BTC"'))
    with pytest.raises(InvalidModelOutput) as caught:
        await client.complete("analyst", USER, tools=[PRICE_TOOL])
    assert caught.value.raw == '{"symbol": "BTC"'
    assert "get_price" in str(caught.value)


async def test_response_schema_as_a_plain_dict(client: ModelClient, server: FakeOpenAIServer) -> None:
    schema = {"title": "Bias view", "type": "object", "properties": {"bias": {"type": "string"}}}
    server.script(Reply.json({"bias": "bullish"}))
    done = await client.complete("analyst", USER, response_schema=schema)
    fmt = server.last_body["response_format"]["json_schema"]
    assert fmt["name"] == "Bias_view"
    assert fmt["schema"] == {**schema, "additionalProperties": False, "required": ["bias"]}
    assert done.text == '{"bias": "bullish"}'


async def test_without_api_key_the_sdk_placeholder_is_sent(server: FakeOpenAIServer) -> None:
    server.api_key = None
    settings = model_settings(server.base_url, api_key=SecretStr(""))
    server.script(Reply.text("ok"))
    async with ModelClient(settings, retry=FAST_RETRY) as client:
        assert (await client.complete("risk", USER)).text == "ok"
    assert server.requests[-1].headers["authorization"] == "Bearer EMPTY"


async def test_rejected_api_key_is_a_config_error_without_retry(
    server: FakeOpenAIServer, sleeps: SleepRecorder
) -> None:
    settings = model_settings(server.base_url, api_key=SecretStr("sk-wrong-key-000000"))
    async with ModelClient(settings, retry=FAST_RETRY, sleep=sleeps) as client:
        with pytest.raises(ModelConfigError) as caught:
            await client.complete("risk", USER)
    assert caught.value.status_code == 401
    assert "BASTION_MODEL__API_KEY" in caught.value.detail
    assert "sk-wrong-key" not in str(caught.value) + caught.value.detail
    assert len(server.chat_bodies) == 1 and sleeps.delays == []


async def test_unknown_served_model_is_a_config_error_naming_the_setting(
    server: FakeOpenAIServer, sleeps: SleepRecorder
) -> None:
    settings = model_settings(server.base_url, risk_model="qwen-typo")
    async with ModelClient(settings, retry=FAST_RETRY, sleep=sleeps) as client:
        with pytest.raises(ModelConfigError) as caught:
            await client.complete("risk", USER)
    assert caught.value.status_code == 404
    assert "BASTION_MODEL__RISK_MODEL='qwen-typo'" in caught.value.detail
    assert len(server.chat_bodies) == 1 and sleeps.delays == []


@pytest.mark.parametrize("status", [400, 422])
async def test_other_4xx_is_a_config_error_without_retry(
    client: ModelClient, server: FakeOpenAIServer, sleeps: SleepRecorder, status: int
) -> None:
    server.script(Reply.status(status, "maximum context length is 8192 tokens"), Reply.text("never sent"))
    with pytest.raises(ModelConfigError) as caught:
        await client.complete("analyst", USER)
    assert caught.value.status_code == status
    assert "maximum context length" in caught.value.detail
    assert server.pending == 1 and sleeps.delays == []


def test_offline_settings_cannot_build_a_client() -> None:
    with pytest.raises(ModelConfigError, match="No language model is configured"):
        ModelClient(model_settings(None))


async def test_unknown_task_is_a_config_error(client: ModelClient, server: FakeOpenAIServer) -> None:
    with pytest.raises(ModelConfigError):
        await client.complete("trader", USER)  # type: ignore[arg-type]
    assert server.chat_bodies == []


async def test_api_key_never_reaches_repr_or_logs(
    server: FakeOpenAIServer, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = model_settings(server.base_url)
    server.script(Reply.drop(), Reply.text("ok"), Reply.raw("not json"), Reply.status(500))
    async with ModelClient(settings, retry=FAST_RETRY, sleep=sleeps) as client:
        assert API_KEY not in repr(client)
        await client.complete("analyst", USER)
        with pytest.raises(InvalidModelOutput):
            await client.complete_json("risk", USER, RiskDecisionOut)
        with pytest.raises(Exception, match="failed to answer"):
            await client.complete("risk", USER)
    assert sleeps.delays == [0.01]  # the drop was retried once, and logged
    assert "retrying" in caplog.text
    assert API_KEY not in caplog.text
