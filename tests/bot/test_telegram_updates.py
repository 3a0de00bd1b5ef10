"""Bad input on the update loop, end to end over real HTTP: `bastion serve` (real PTB 22) against the fake Bot API.

An update PTB cannot parse is skipped (logged once without its text, counted), later updates are answered;
/health sees a stalled polling loop; the webhook refuses oversized and deeply nested bodies and answers a repeated
update_id once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.serve import Server
from tests.bot.telegram_harness import ALICE, Running, bot_settings, free_port, running, telegram_services
from tests.bot.webhook_answer import telegram_makes_the_answered_call
from tests.fakes.telegram_api import FakeTelegram

SECRET = "s3cret-token"
USER_TEXT = "my private words 8d1f"
# Telegram never sends this, but PTB must survive it: a message without date and chat makes Message() fail.
BROKEN = {"message": {"message_id": 77, "text": USER_TEXT, "from": {"id": ALICE, "is_bot": False}}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server."""
    async with FakeTelegram() as server:
        yield server


async def answered(fake: FakeTelegram, text: str, chat_id: int = ALICE) -> str:
    """Send a message as ALICE and wait for the bot's next message in the chat; returns its text."""
    before = len(fake.sent(chat_id))
    fake.user_message(chat_id, ALICE, text)
    await fake.wait_for(lambda: len(fake.sent(chat_id)) > before, timeout=15)
    return fake.sent(chat_id)[before].plain or ""


def skipped_metric(metrics: str, reason: str) -> float:
    """The value of bastion_telegram_updates_skipped_total{reason=...} in a Prometheus exposition."""
    prefix = f'bastion_telegram_updates_skipped_total{{reason="{reason}"}} '
    line = next(line for line in metrics.splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))


async def test_polling_skips_an_unparseable_update_and_answers_the_next(
    fake: FakeTelegram, sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    settings = bot_settings(fake, sqlite_url, tmp_path, api_port=port)
    async with telegram_services(settings) as services, running(services, fake):
        broken_id = fake.push_update(json.loads(json.dumps(BROKEN)))["update_id"]
        text = await answered(fake, "/price btc")
        assert "BTC/USDT:USDT" in text
        await fake.wait_for(lambda: not fake.pending_updates(), timeout=15)  # the offset moved past both
        rounds = sum(1 for c in fake.calls if c.method == "getUpdates")
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            health = await client.get(f"http://127.0.0.1:{port}/health")
    assert rounds < 20  # not the same batch fetched again and again
    assert skipped_metric(metrics, "unparseable") == 1
    assert health.status_code == 200 and health.json()["updates"] == "ok"
    records = [r for r in caplog.records if "could not be parsed" in r.getMessage()]
    assert len(records) == 1 and f"update {broken_id} " in records[0].getMessage()
    assert all(USER_TEXT not in r.getMessage() for r in caplog.records)  # the user's text is in no log line


async def test_health_reports_a_stalled_polling_loop_and_its_recovery(
    fake: FakeTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()

    def quick(server: Server) -> None:
        assert server.telegram is not None
        server.telegram.poll_timeout_s = 1  # idle rounds complete every second
        server.telegram.guard.stall_after_s = 2.5

    settings = bot_settings(fake, sqlite_url, tmp_path, api_port=port)
    async with telegram_services(settings) as services, running(services, fake, quick), httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{port}/health"
        assert (await client.get(url)).status_code == 200
        # Telegram fails every getUpdates for a while; PTB backs off 1, 1.5, 2.25, 3.4, 5.1 s between tries.
        fake.fail_next("getUpdates", status=502, description="Bad Gateway", count=5)
        stalled = await _wait_health(client, url, 503, timeout=15)
        assert stalled["status"] == "degraded" and "getUpdates" in stalled["updates"]
        assert stalled["database"] is True
        recovered = await _wait_health(client, url, 200, timeout=20)
        assert recovered["updates"] == "ok"
        assert "ETH/USDT:USDT" in await answered(fake, "/price eth")


async def _wait_health(client: httpx.AsyncClient, url: str, status: int, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(url)
        if response.status_code == status:
            return dict(response.json())
        assert time.monotonic() < deadline, f"/health stayed {response.status_code}: {response.json()}"
        await asyncio.sleep(0.2)


@pytest.fixture
async def webhook_bot(fake: FakeTelegram, sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[Running, str]]:
    """`bastion serve` in webhook mode; yields the run and the local webhook URL (Telegram posts there)."""
    port = free_port()
    settings = bot_settings(
        fake,
        sqlite_url,
        tmp_path,
        api_port=port,
        mode="webhook",
        webhook_url="https://bot.example.com/telegram/webhook",
        webhook_secret=SECRET,
    )
    async with telegram_services(settings) as services, running(services, fake) as run:
        assert fake.webhook is not None
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        fake.webhook["url"] = url  # the reverse proxy in front of the API
        yield run, url


def price_update(update_id: int, message_id: int) -> dict[str, Any]:
    """A private /price btc message from ALICE, as Telegram posts it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
            "chat": {"id": ALICE, "type": "private", "first_name": "Alice"},
            "date": int(time.time()),
            "text": "/price btc",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_webhook_skips_an_unparseable_update_and_answers_the_next(
    fake: FakeTelegram, webhook_bot: tuple[Running, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.push_update(json.loads(json.dumps(BROKEN)))
    await fake.wait_for(lambda: len(fake.webhook_deliveries) == 1)
    assert fake.webhook_deliveries == [200]  # skipped, not 500 (Telegram would post it again and again)
    assert "BTC/USDT:USDT" in await answered(fake, "/price btc")
    assert fake.webhook_deliveries == [200, 200]
    _, url = webhook_bot
    metrics_url = url.replace("/telegram/webhook", "/metrics")
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(metrics_url)).text
    assert skipped_metric(metrics, "unparseable") == 1
    assert all(USER_TEXT not in r.getMessage() for r in caplog.records)


async def test_webhook_answers_a_repeated_update_once(fake: FakeTelegram, webhook_bot: tuple[Running, str]) -> None:
    _, url = webhook_bot
    body = json.dumps(price_update(900, 41))
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        first = await client.post(url, content=body, headers=headers)  # its answer is lost on the way back
        again = await client.post(url, content=body, headers=headers)  # Telegram retrying an unacknowledged post
        assert first.status_code == again.status_code == 200
        # Telegram makes the call the retry's answer carries (the reply stored with the update, if it went there).
        await telegram_makes_the_answered_call(client, fake.base_url, fake.token, again)
        await fake.wait_for(lambda: bool(fake.sent(ALICE)), timeout=15)
        await asyncio.sleep(1.0)  # a second answer would be on its way by now
        metrics = (await client.get(url.replace("/telegram/webhook", "/metrics"))).text
    assert len(fake.sent(ALICE)) == 1
    assert skipped_metric(metrics, "duplicate") == 1


async def test_webhook_refuses_oversized_and_deeply_nested_bodies(
    fake: FakeTelegram, webhook_bot: tuple[Running, str]
) -> None:
    _, url = webhook_bot
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    huge = json.dumps({**price_update(901, 42), "padding": "x" * (2 << 20)})
    deep = '{"update_id": 902, "message": ' + "[" * 100_000 + "]" * 100_000 + "}"
    nested = '{"update_id": 903, "message": {"text": "hi", "x": ' + "[" * 200 + "]" * 200 + "}}"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the limit must count what arrives
        for i in range(0, len(huge), 64 << 10):
            yield huge[i : i + (64 << 10)].encode()

    async with httpx.AsyncClient(timeout=30) as client:
        too_big = await client.post(url, content=huge, headers=headers)
        too_big_chunked = await client.post(url, content=chunked(), headers=headers)
        too_deep = await client.post(url, content=deep, headers=headers)
        too_nested = await client.post(url, content=nested, headers=headers)
    assert too_big.status_code == 413 and too_big_chunked.status_code == 413
    assert too_deep.status_code == 400 and too_nested.status_code == 400
    assert "BTC/USDT:USDT" in await answered(fake, "/price btc")  # and the bot still works
    assert len(fake.sent(ALICE)) == 1  # none of the refused bodies was queued
