"""The fake OpenAI server itself, as other suites will use it: SDK compatibility, SSE framing, script and records."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.replies import Reply


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServer]:
    """An open fake server (no API key) with one model."""
    async with FakeOpenAIServer(models=["m"]) as server:
        yield server


def sdk(server: FakeOpenAIServer) -> openai.AsyncOpenAI:
    """A plain openai SDK client of the fake server."""
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)


async def test_sdk_reassembles_streamed_tool_calls(fake: FakeOpenAIServer) -> None:
    fake.script(Reply.tool_calls(("get_price", {"symbol": "BTC"}), ("get_funding", {"symbol": "ETH"})))
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async with sdk(fake) as client:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for chunk in stream:
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for delta in choice.delta.tool_calls or []:
                    call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] += delta.id or ""
                    call["name"] += (delta.function.name or "") if delta.function else ""
                    call["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_price", {"symbol": "BTC"}),
        ("get_funding", {"symbol": "ETH"}),
    ]
    assert all(c["id"].startswith("call_") for c in calls.values())
    assert finish == "tool_calls"


async def test_sse_framing_ends_with_done_and_reports_usage_on_request(fake: FakeOpenAIServer) -> None:
    fake.script(Reply.text("two words"))
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{fake.base_url}/chat/completions", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "two words"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


async def test_callable_reply_sees_the_request(fake: FakeOpenAIServer) -> None:
    fake.default = lambda body: Reply.text("echo: " + body["messages"][-1]["content"])
    async with sdk(fake) as client:
        for word in ("one", "two"):
            done = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": word}])
            assert done.choices[0].message.content == f"echo: {word}"


async def test_exhausted_script_answers_500_naming_the_problem(fake: FakeOpenAIServer) -> None:
    async with sdk(fake) as client:
        with pytest.raises(openai.InternalServerError, match="no scripted reply left"):
            await client.chat.completions.create(model="m", messages=[])


async def test_auth_and_model_checks_do_not_use_up_the_script(fake: FakeOpenAIServer) -> None:
    fake.api_key = "secret-key-123"
    fake.script(Reply.text("kept"))
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="m", messages=[])
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="secret-key-123", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError, match="`other` does not exist"):
            await client.chat.completions.create(model="other", messages=[])
        assert [m.id async for m in client.models.list()] == ["m"]
        done = await client.chat.completions.create(model="m", messages=[])
    assert done.choices[0].message.content == "kept"
    assert len(fake.chat_bodies) == 3 and fake.pending == 0


async def test_reset_forgets_script_and_records(fake: FakeOpenAIServer) -> None:
    fake.script(Reply.text("a"), Reply.text("b"))
    async with httpx.AsyncClient() as http:
        await http.get(f"{fake.url}/health")
    fake.reset()
    assert fake.pending == 0 and fake.requests == []
    with pytest.raises(AssertionError, match="no chat completion request"):
        _ = fake.last_body


def test_sync_context_manager_serves_and_stops() -> None:
    with FakeOpenAIServer() as server:
        assert httpx.get(f"{server.url}/health").status_code == 200
        url = server.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


async def test_stop_does_not_wait_for_a_long_scripted_delay() -> None:
    server = FakeOpenAIServer(models=["m"])
    await asyncio.to_thread(server.start)
    server.script(Reply.text("late").after(30))
    async with httpx.AsyncClient(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{server.base_url}/chat/completions", json={"model": "m", "messages": []})
    started = time.monotonic()
    await asyncio.to_thread(server.stop)
    assert time.monotonic() - started < 4  # not the 30 s delay (nor stop's 5 s join); 4 s, not 2, for a loaded CI
