"""Fixtures: a fake OpenAI-protocol server over real HTTP, settings pointing at it, and a client with fast retries."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from bastion.settings import ModelSettings
from inference import ModelClient, RetryPolicy
from tests.fakes.openai_server import FakeOpenAIServer

ANALYST = "bastion-analyst"
RISK = "bastion-risk"
API_KEY = "sk-test-0123456789abcdef"
TIMEOUT_S = 2.0  # not 0.5: every answer of the fake must come within it, which a loaded CI machine may not
# Tiny, jitter-free backoff: the delays are asserted exactly and the suite stays fast.
FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


class SleepRecorder:
    """Stands in for asyncio.sleep in the client: records each backoff delay, waits for none of it."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def model_settings(base_url: str | None, **overrides: object) -> ModelSettings:
    """Settings with distinct analyst/risk models and values unlike the defaults, so routing is visible."""
    values: dict[str, object] = {
        "base_url": base_url,
        "api_key": SecretStr(API_KEY),
        "analyst_model": ANALYST,
        "risk_model": RISK,
        "analyst_temperature": 0.6,
        "risk_temperature": 0.3,
        "max_tokens": 321,
        "timeout_s": TIMEOUT_S,
    }
    values.update(overrides)
    return ModelSettings.model_validate(values)


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    """A running fake server serving both task models and requiring API_KEY."""
    async with FakeOpenAIServer(models=[ANALYST, RISK], api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def settings(server: FakeOpenAIServer) -> ModelSettings:
    """Model settings pointing at the fake server."""
    return model_settings(server.base_url)


@pytest.fixture
def sleeps() -> SleepRecorder:
    """Backoff delays the client asked for."""
    return SleepRecorder()


@pytest.fixture
async def client(settings: ModelSettings, sleeps: SleepRecorder) -> AsyncIterator[ModelClient]:
    """A client of the fake server with fast, recorded retries."""
    async with ModelClient(settings, retry=FAST_RETRY, sleep=sleeps) as model:
        yield model
