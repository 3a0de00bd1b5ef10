"""Failures over real HTTP: timeouts, refused and dropped connections, 5xx, and streaming."""

from __future__ import annotations

import time

import pytest

from inference import ModelClient, ModelTimeout, ModelUnavailable, RetryPolicy
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.replies import Reply
from tests.inference.conftest import ANALYST, FAST_RETRY, TIMEOUT_S, SleepRecorder, closed_port, model_settings

USER = [{"role": "user", "content": "Levels on ETH?"}]


async def test_slow_answer_times_out_within_the_timeout_and_is_not_retried(
    client: ModelClient, server: FakeOpenAIServer, sleeps: SleepRecorder
) -> None:
    server.script(Reply.delay(6.0, Reply.json({"action": "HOLD"})), Reply.text("never reached"))
    started = time.monotonic()
    with pytest.raises(ModelTimeout, match=f"within {TIMEOUT_S:g} seconds"):
        await client.complete("risk", USER)
    elapsed = time.monotonic() - started
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + 3.0  # well before the 6 s answer (3 s of room for a loaded CI)
    assert len(server.chat_bodies) == 1 and sleeps.delays == []


async def test_connection_refused_is_retried_with_backoff_then_unavailable() -> None:
    sleeps = SleepRecorder()
    settings = model_settings(f"http://127.0.0.1:{closed_port()}/v1")
    policy = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.03, jitter=0.0)
    async with ModelClient(settings, retry=policy, sleep=sleeps) as client:
        with pytest.raises(ModelUnavailable) as caught:
            await client.complete("analyst", USER)
    assert sleeps.delays == [0.01, 0.02, 0.03]  # doubling, capped; one wait between each of the 4 attempts
    assert "after 4 attempt(s)" in caught.value.detail
    assert "Connect" in caught.value.detail  # the real cause (refused), not just "Connection error."
    assert "127.0.0.1" not in str(caught.value)  # the user message does not expose internal hosts


async def test_backoff_really_waits_between_attempts() -> None:
    settings = model_settings(f"http://127.0.0.1:{closed_port()}/v1")
    policy = RetryPolicy(attempts=3, base_delay_s=0.1, max_delay_s=1.0, jitter=0.0)
    started = time.monotonic()
    async with ModelClient(settings, retry=policy) as client:
        with pytest.raises(ModelUnavailable):
            await client.complete("risk", USER)
    assert 0.3 <= time.monotonic() - started < 1.5  # 0.1 + 0.2 s of backoff


async def test_every_dropped_connection_counts_as_an_attempt(
    client: ModelClient, server: FakeOpenAIServer, sleeps: SleepRecorder
) -> None:
    server.default = Reply.drop()
    with pytest.raises(ModelUnavailable):
        await client.complete("analyst", USER)
    assert len(server.chat_bodies) == FAST_RETRY.attempts
    assert sleeps.delays == [0.01, 0.02]


async def test_dropped_connection_then_answer_succeeds(
    client: ModelClient, server: FakeOpenAIServer, sleeps: SleepRecorder
) -> None:
    server.script(Reply.drop(), Reply.text("ETH holds 3,120."))
    assert (await client.complete("analyst", USER)).text == "ETH holds 3,120."
    assert len(server.chat_bodies) == 2 and sleeps.delays == [0.01]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_are_unavailable_without_a_retry_storm(
    client: ModelClient, server: FakeOpenAIServer, sleeps: SleepRecorder, status: int
) -> None:
    server.script(Reply.status(status), Reply.text("would have succeeded"))
    with pytest.raises(ModelUnavailable) as caught:
        await client.complete("risk", USER)
    assert caught.value.status_code == status
    assert len(server.chat_bodies) == 1 and server.pending == 1 and sleeps.delays == []


async def test_stream_yields_deltas_in_order(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.stream(["## Key ", "structural", " levels\n", "- R1 3,180 (grade 3)"]))
    deltas = [d async for d in client.stream("analyst", USER)]
    assert deltas == ["## Key ", "structural", " levels\n", "- R1 3,180 (grade 3)"]
    body = server.last_body
    assert body["stream"] is True and body["model"] == ANALYST and body["temperature"] == 0.6


async def test_stream_deltas_arrive_as_the_server_sends_them(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.stream(["a", "b", "c"], chunk_delay_s=0.15))
    arrivals = []
    started = time.monotonic()
    async for _ in client.stream("analyst", USER):
        arrivals.append(time.monotonic() - started)
    # Deltas are handed over as they arrive, not batched until the answer is complete: the first is in hand
    # well before the last is sent (0.3 s later). Gaps between neighbours are not asserted: on a loaded machine
    # the client may read two adjacent chunks in one go, which is not batching the answer.
    assert len(arrivals) == 3 and arrivals[2] - arrivals[0] >= 0.2


async def test_stream_cut_mid_answer_is_unavailable_after_the_first_deltas(
    client: ModelClient, server: FakeOpenAIServer, sleeps: SleepRecorder
) -> None:
    server.script(Reply.stream(["one ", "two ", "three"], drop_after=2), Reply.text("not retried"))
    received: list[str] = []
    with pytest.raises(ModelUnavailable, match="mid-way"):
        async for delta in client.stream("analyst", USER):
            received.append(delta)
    assert received == ["one ", "two "]
    assert len(server.chat_bodies) == 1 and sleeps.delays == []


async def test_stream_stalling_between_deltas_times_out(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.stream(["first ", "second"], chunk_delay_s=6.0))
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(ModelTimeout):
        async for delta in client.stream("analyst", USER):
            received.append(delta)
    assert received == ["first "]
    assert time.monotonic() - started < TIMEOUT_S + 3.0  # well before the 6 s stall (3 s of room for a loaded CI)


async def test_stream_that_cannot_connect_is_retried_then_unavailable(sleeps: SleepRecorder) -> None:
    settings = model_settings(f"http://127.0.0.1:{closed_port()}/v1")
    async with ModelClient(settings, retry=FAST_RETRY, sleep=sleeps) as client:
        with pytest.raises(ModelUnavailable):
            async for _ in client.stream("analyst", USER):
                pass
    assert sleeps.delays == [0.01, 0.02]


async def test_stream_error_status_is_unavailable(client: ModelClient, server: FakeOpenAIServer) -> None:
    server.script(Reply.status(503))
    with pytest.raises(ModelUnavailable):
        async for _ in client.stream("analyst", USER):
            pass
