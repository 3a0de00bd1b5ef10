"""Replies in the webhook response body, end to end: `bastion serve` in webhook mode (PTB, the durable inbox) against
the fake Bot API, which makes the call a webhook answers with as Telegram does. A final single message is the
response; a retry of its update after a lost answer gets the same stored call and is not handled again; a turn
slower than the budget answers empty and sends normally; a reply with buttons is sent by the bot (its id is kept)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from telegram import Update

from storage.models import Approval, InboxUpdate
from tests.bot.telegram_harness import ALICE, Running, bot_settings, free_port, running, telegram_services
from tests.bot.webhook_answer import telegram_makes_the_answered_call
from tests.fakes.telegram_api import FakeTelegram

SECRET = "reply-secret"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server."""
    async with FakeTelegram() as server:
        yield server


async def _serve(fake: FakeTelegram, sqlite_url: str, tmp_path: Path, budget_s: float) -> AsyncIterator[Running]:
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
    settings.api.webhook_reply_budget_s = budget_s
    async with telegram_services(settings) as services, running(services, fake) as run:
        assert fake.webhook is not None
        fake.webhook["url"] = f"http://127.0.0.1:{port}/telegram/webhook"  # the reverse proxy in front of the API
        yield run


@pytest.fixture
async def served(fake: FakeTelegram, sqlite_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """`bastion serve` answering replies in the response body (the default budget)."""
    async for run in _serve(fake, sqlite_url, tmp_path, 5.0):
        yield run


@pytest.fixture
async def impatient(fake: FakeTelegram, sqlite_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """`bastion serve` whose budget no turn meets."""
    async for run in _serve(fake, sqlite_url, tmp_path, 0.000001):
        yield run


def _update(update_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
            "chat": {"id": ALICE, "type": "private", "first_name": "Alice"},
            "date": int(time.time()),
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split(" ")[0])}],
        },
    }


async def _post(run: Running, update: dict[str, Any]) -> httpx.Response:
    assert run.fake.webhook is not None
    async with httpx.AsyncClient() as client:
        response = await client.post(run.fake.webhook["url"], content=json.dumps(update), headers=HEADERS, timeout=30)
    assert response.status_code == 200
    return response


def _sends(fake: FakeTelegram) -> int:
    return sum(c.method == "sendMessage" for c in fake.calls)


async def test_a_price_answer_is_the_response_and_a_retry_gets_the_same_call_not_a_second_turn(
    served: Running, fake: FakeTelegram
) -> None:
    fake.user_message(ALICE, ALICE, "/price btc")  # through the fake's own webhook delivery, as Telegram posts it
    await fake.wait_for(lambda: len(fake.sent(ALICE)) == 1, timeout=15)
    inbox = served.server.inbox
    assert inbox is not None and inbox.answered_in_body == 1
    assert _sends(fake) == 1  # the call the response carried: the bot made no request of its own

    update = _update(7001, "/price eth")
    lost = await _post(served, update)  # Telegram never saw this answer: it posts the update again
    call = lost.json()
    assert call["method"] == "sendMessage" and call["chat_id"] == ALICE and "ETH/USDT:USDT" in call["text"]
    retry = await _post(served, update)
    assert retry.json() == call  # the stored reply, not a second handling
    assert inbox.stored == 2 and inbox.duplicates == 1 and inbox.answered_in_body == 2
    async with served.services.sessions() as s:
        row = await s.scalar(select(InboxUpdate).where(InboxUpdate.update_id == 7001))  # type: ignore[arg-type]
    assert row is not None and (row.status, row.reply) == ("done", call)
    async with httpx.AsyncClient() as client:
        await telegram_makes_the_answered_call(client, fake.base_url, fake.token, retry)
    assert "ETH/USDT:USDT" in (fake.sent(ALICE)[1].plain or "")
    assert len(fake.sent(ALICE)) == 2 and _sends(fake) == 2


async def test_a_turn_slower_than_the_budget_answers_empty_and_the_bot_sends_the_reply(
    impatient: Running, fake: FakeTelegram
) -> None:
    update = _update(7101, "/price btc")
    response = await _post(impatient, update)
    assert response.json() == {"ok": True}
    await fake.wait_for(lambda: len(fake.sent(ALICE)) == 1, timeout=15)  # sent by the bot itself
    assert "BTC/USDT:USDT" in (fake.sent(ALICE)[0].plain or "")
    inbox = impatient.server.inbox
    assert inbox is not None and inbox.answered_in_body == 0
    await inbox.drain()
    assert (await _post(impatient, update)).json() == {"ok": True}  # its retry: nothing stored to answer with
    assert len(fake.sent(ALICE)) == 1


async def test_a_reply_with_buttons_is_sent_by_the_bot_and_its_message_id_kept(
    served: Running, fake: FakeTelegram
) -> None:
    response = await _post(served, _update(7201, "/alert btc above 250000"))
    assert response.json() == {"ok": True}
    [message] = fake.sent(ALICE)
    assert message.reply_markup  # the confirm buttons
    async with served.services.sessions() as s:
        approval = await s.scalar(select(Approval))
    assert approval is not None and approval.message_ref == f"{ALICE}:{message.message_id}"


async def test_a_plain_message_skips_ptbs_parsing_and_is_answered_as_one_that_goes_through_it(
    served: Running, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[int] = []
    de_json = Update.de_json

    def counted(data: Any, bot: Any = None) -> Update:
        parsed.append(data["update_id"])
        return de_json(data, bot)

    monkeypatch.setattr(Update, "de_json", counted)
    plain = (await _post(served, _update(7301, "/price btc"))).json()
    replying = _update(7302, "/price btc")  # a reply: PTB parses it, as every update before
    replying["message"]["reply_to_message"] = {
        "message_id": 7301,
        "date": replying["message"]["date"],
        "chat": replying["message"]["chat"],
        "text": "earlier",
    }
    ptb = (await _post(served, replying)).json()
    assert parsed == [7302]
    assert plain["method"] == ptb["method"] == "sendMessage" and plain["chat_id"] == ptb["chat_id"] == ALICE
    assert "BTC/USDT:USDT" in plain["text"] and "BTC/USDT:USDT" in ptb["text"]
    assert plain.keys() == ptb.keys()  # the same call, field for field


async def test_a_failing_plain_message_is_logged_without_a_traceback_in_the_chat(
    served: Running, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("the core fell over")

    monkeypatch.setattr(served.server.core, "handle", broken)
    response = await _post(served, _update(7401, "/price btc"))
    assert response.json() == {"ok": True}  # handled (and logged), not retried by Telegram forever
    assert "telegram update failed" in caplog.text and "the core fell over" in caplog.text
    assert fake.sent(ALICE) == []
