"""429 from Telegram on the interactive path, over real HTTP (real PTB 22 against the fake Bot API): the reply waits
`retry_after` and is retried (bounded) instead of an apology going into the same flooded chat at once."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bastion.serve import Server
from tests.bot.telegram_harness import ALICE, Running, bot_settings, running, telegram_services
from tests.fakes.telegram_api import FakeTelegram


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server."""
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram, sqlite_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """`bastion serve` with Telegram in polling mode."""
    async with telegram_services(bot_settings(fake, sqlite_url, tmp_path)) as services, running(services, fake) as run:
        yield run


def attempts(fake: FakeTelegram, method: str) -> list[tuple[int, float]]:
    """(status, arrival time) of every call of `method`."""
    return [(c.status, c.at) for c in fake.calls if c.method == method]


async def test_a_reply_waits_out_repeated_429s_and_arrives_without_an_apology(bot: Running) -> None:
    fake = bot.fake
    fake.fail_next("sendMessage", status=429, retry_after=1, count=3)
    fake.user_message(ALICE, ALICE, "/price btc")
    await fake.wait_for(lambda: bool(fake.sent(ALICE)), timeout=20)
    texts = [m.plain or "" for m in fake.sent(ALICE)]
    assert len(texts) == 1 and "BTC/USDT:USDT" in texts[0]  # the answer, and no "something went wrong"
    calls = attempts(fake, "sendMessage")
    assert [s for s, _ in calls] == [429, 429, 429, 200]
    assert all(b - a >= 0.95 for (_, a), (_, b) in itertools.pairwise(t for t in calls))  # each retry_after honoured


async def test_a_chart_photo_waits_out_429s(bot: Running) -> None:
    fake = bot.fake
    fake.fail_next("sendPhoto", status=429, retry_after=1, count=3)
    fake.user_message(ALICE, ALICE, "/chart sol 1h")
    await fake.wait_for(lambda: any(m.photo_size for m in fake.sent(ALICE)), timeout=30)
    assert [s for s, _ in attempts(fake, "sendPhoto")] == [429, 429, 429, 200]
    assert not any("went wrong" in (m.plain or "") for m in fake.sent(ALICE))


async def test_beyond_the_budget_nothing_more_is_pushed_into_the_flooded_chat(
    fake: FakeTelegram, sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def impatient(server: Server) -> None:
        assert server.telegram is not None
        gate = server.telegram.out.gate
        gate.policy = replace(gate.policy, budget_s=2.0)  # instead of a minute, so the test stays short

    caplog.set_level(logging.INFO)
    settings = bot_settings(fake, sqlite_url, tmp_path)
    async with telegram_services(settings) as services, running(services, fake, impatient):
        fake.fail_next("sendMessage", status=429, retry_after=4, count=1)
        fake.user_message(ALICE, ALICE, "/price btc")
        # The answer gives up after the 429; the apology that follows is held back, not sent.
        await fake.wait_for(lambda: any("is not sent" in r.getMessage() for r in caplog.records), timeout=15)
        # Another chat is not held up by this one's flood wait.
        fake.user_message(ALICE + 1, ALICE + 1, "/price eth")
        await fake.wait_for(lambda: bool(fake.sent(ALICE + 1)), timeout=15)
        to_alice = [c for c in fake.calls if c.method == "sendMessage" and str(c.params.get("chat_id")) == str(ALICE)]
    assert [c.status for c in to_alice] == [429]  # the apology was not sent at once into a chat told to wait
    assert fake.sent(ALICE) == []
