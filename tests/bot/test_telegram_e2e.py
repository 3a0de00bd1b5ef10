"""End to end over real HTTP: `bastion serve`'s Telegram channel (real PTB 22) against the fake Bot API.

Defaults everywhere else: simulated market, paper exchange, offline model, SQLite.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from bot.core.messages import Outbound
from bot.core.notify import payload_of
from storage.models import Approval, ExchangeAccount, Outbox, OutboxStatus, User
from storage.repositories import outbox as outbox_repo
from storage.types import utcnow
from tests.bot.telegram_harness import (
    ALICE,
    BOB,
    GROUP,
    Running,
    bot_settings,
    executions,
    free_port,
    running,
    sol_size,
    telegram_services,
    trader_with_sol_long,
)
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


async def reply_to(fake: FakeTelegram, chat_id: int, user_id: int, text: str, **kw: object) -> str:
    """Send a message as a user and wait for the bot's next message in that chat; returns its text."""
    before = len(fake.sent(chat_id))
    fake.user_message(chat_id, user_id, text, **kw)  # type: ignore[arg-type]
    await fake.wait_for(lambda: len(fake.sent(chat_id)) > before, timeout=15)
    msg = fake.sent(chat_id)[before]
    return msg.plain or ""


def buttons_of(fake: FakeTelegram, chat_id: int) -> tuple[int, list[str]]:
    """(message id, callback data) of the last bot message with buttons in a chat."""
    for msg in reversed(fake.sent(chat_id)):
        if msg.reply_markup and msg.reply_markup.get("inline_keyboard"):
            return msg.message_id, [b["callback_data"] for row in msg.reply_markup["inline_keyboard"] for b in row]
    raise AssertionError(f"no message with buttons in chat {chat_id}")


async def test_start_and_command_menu(bot: Running) -> None:
    fake = bot.fake
    text = await reply_to(fake, ALICE, ALICE, "/start")
    assert "Bastion" in text and "/price" in text and "/close" in text
    names = [c["command"] for c in fake.commands]
    assert {"price", "levels", "chart", "close", "connect", "help"} <= set(names)
    assert "grant" not in names  # admin commands stay out of everyone's menu


async def test_price_and_levels(bot: Running) -> None:
    fake = bot.fake
    price = await reply_to(fake, ALICE, ALICE, "/price btc")
    assert "BTC/USDT:USDT" in price and "simulated" in price
    levels = await reply_to(fake, ALICE, ALICE, "/levels eth 4h")
    assert "ETH/USDT:USDT 4h structure" in levels and "Support" in levels


async def test_chart_arrives_as_photo(bot: Running) -> None:
    fake = bot.fake
    fake.user_message(ALICE, ALICE, "/chart sol 1h")
    await fake.wait_for(lambda: any(m.photo_size for m in fake.sent(ALICE)), timeout=20)
    photo = next(m for m in fake.sent(ALICE) if m.photo_size)
    assert photo.photo_size and photo.photo_size > 10_000  # a real PNG, not a placeholder


async def test_free_text_goes_to_the_analyst(bot: Running) -> None:
    text = await reply_to(bot.fake, ALICE, ALICE, "what's the price of bitcoin?")
    assert text.startswith("[offline model]") and "BTC/USDT:USDT" in text


async def test_close_request_buttons_approve_exactly_one_order(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    user_id = await trader_with_sol_long(services, ALICE)
    text = await reply_to(fake, ALICE, ALICE, "close half my sol long")
    assert "Close 50% of the SOL/USDT:USDT long" in text
    message_id, data = buttons_of(fake, ALICE)
    assert all(len(d.encode()) <= 64 for d in data) and data[0].startswith("v1:")
    fake.press_button(ALICE, ALICE, message_id, data[0])
    await fake.wait_for(lambda: "Executed" in (fake.message(ALICE, message_id).text or ""), timeout=15)
    assert fake.callback_answers()  # answered
    assert await executions(services) == 1
    assert await sol_size(services, user_id) == pytest.approx(5.0)
    # The edited message has no buttons left.
    assert not (fake.message(ALICE, message_id).reply_markup or {}).get("inline_keyboard")


async def test_two_concurrent_presses_place_one_order(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    user_id = await trader_with_sol_long(services, ALICE)
    await reply_to(fake, ALICE, ALICE, "/close sol half")
    message_id, data = buttons_of(fake, ALICE)
    fake.press_button(ALICE, ALICE, message_id, data[0])
    fake.press_button(ALICE, ALICE, message_id, data[0])
    await fake.wait_for(lambda: len(fake.callback_answers()) == 2, timeout=15)
    await fake.wait_for(lambda: "Executed" in (fake.message(ALICE, message_id).text or ""), timeout=15)
    assert await executions(services) == 1
    assert await sol_size(services, user_id) == pytest.approx(5.0)
    answers = sorted(a.get("text", "") for a in fake.callback_answers())
    # The second press lands while the first order is in flight or after it: either way it says nothing more goes.
    assert any("Nothing more will be placed" in a or "nothing more will be placed" in a for a in answers)


async def test_another_members_press_in_a_group_is_refused(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    user_id = await trader_with_sol_long(services, ALICE)
    await reply_to(fake, GROUP, ALICE, "/close sol half", chat_type="group")
    message_id, data = buttons_of(fake, GROUP)
    fake.press_button(GROUP, BOB, message_id, data[0], chat_type="group")
    await fake.wait_for(lambda: len(fake.callback_answers()) == 1)
    assert "someone else" in fake.callback_answers()[0]["text"]
    assert await executions(services) == 0
    assert fake.message(GROUP, message_id).reply_markup  # still pending for its owner
    fake.press_button(GROUP, ALICE, message_id, data[0], chat_type="group")
    await fake.wait_for(lambda: "Executed" in (fake.message(GROUP, message_id).text or ""), timeout=15)
    assert await sol_size(services, user_id) == pytest.approx(5.0)


async def test_group_chatter_is_ignored_mentions_are_answered(bot: Running) -> None:
    fake = bot.fake
    fake.user_message(GROUP, BOB, "price btc anyone?", chat_type="group")
    text = await reply_to(fake, GROUP, BOB, "@bastion_test_bot price btc", chat_type="group")
    assert "BTC/USDT:USDT" in text
    await asyncio.sleep(0.3)
    assert len(fake.sent(GROUP)) == 1  # the unaddressed message got no answer


async def test_expired_press_is_refused_and_the_sweep_edits_the_message(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    await trader_with_sol_long(services, ALICE)
    await reply_to(fake, ALICE, ALICE, "/close sol")
    message_id, data = buttons_of(fake, ALICE)
    async with services.sessions.begin() as session:
        await session.execute(update(Approval).values(expires_at=utcnow() - timedelta(seconds=1)))
    fake.press_button(ALICE, ALICE, message_id, data[0])
    await fake.wait_for(lambda: len(fake.callback_answers()) == 1)
    assert "expired" in fake.callback_answers()[0]["text"]
    assert await bot.server.core.expire_approvals(bot.server.editors()) == 1
    assert "Expired" in (fake.message(ALICE, message_id).text or "")
    assert await executions(services) == 0


async def test_restart_between_proposal_and_press(fake: FakeTelegram, sqlite_url: str, tmp_path: Path) -> None:
    settings = bot_settings(fake, sqlite_url, tmp_path)
    async with telegram_services(settings) as services:
        user_id = await trader_with_sol_long(services, ALICE)
        async with running(services, fake):
            await reply_to(fake, ALICE, ALICE, "/close sol half")
    message_id, data = buttons_of(fake, ALICE)
    async with telegram_services(settings) as services, running(services, fake):  # a new process, same files
        fake.press_button(ALICE, ALICE, message_id, data[0])
        await fake.wait_for(lambda: "Executed" in (fake.message(ALICE, message_id).text or ""), timeout=15)
        fake.press_button(ALICE, ALICE, message_id, data[0])
        await fake.wait_for(lambda: len(fake.callback_answers()) == 2)
        assert await executions(services) == 1
        assert await sol_size(services, user_id) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/levels", "Usage: /levels <symbol> [15m|1h|4h|1d]"),
        ("/levels btc 7m", "timeframe"),
        ("/size btc abc 59000", "entry"),
        ("/close sol half twice", "twice"),
        ("/price btc eth", "unexpected extra argument"),
        ("/frobnicate", "Unknown command /frobnicate"),
    ],
)
async def test_malformed_commands_get_a_usage_message(bot: Running, text: str, expected: str) -> None:
    reply = await reply_to(bot.fake, ALICE, ALICE, text)
    assert expected.lower() in reply.lower()


async def test_keys_in_a_group_are_refused_deleted_and_not_stored(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    fake.user_message(GROUP, ALICE, "/connect binanceusdm AKIAKEY123456 SUPERSECRET987654", chat_type="group")
    await fake.wait_for(lambda: bool(fake.sent(GROUP)))
    assert "private chat" in (fake.sent(GROUP)[0].text or "")
    assert any(chat == GROUP for chat, _ in fake.deleted)
    async with services.sessions() as session:
        assert (await session.scalars(select(ExchangeAccount))).all() == []
    assert all("SUPERSECRET" not in (m.text or "") for m in fake.sent())


async def test_connect_in_private_stores_encrypted_and_deletes_the_message(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    text = await reply_to(fake, ALICE, ALICE, "/connect bybit AKIAKEY123456 SUPERSECRET987654")
    assert "Connected bybit" in text and "SUPERSECRET" not in text and "AKIAKEY" not in text
    assert any(chat == ALICE for chat, _ in fake.deleted)
    async with services.sessions() as session:
        row = (await session.scalars(select(ExchangeAccount))).one()
    assert row.credentials_encrypted and b"SUPERSECRET" not in row.credentials_encrypted.encode()
    assert row.read_only


async def test_personal_data_in_a_group_goes_private(bot: Running) -> None:
    fake = bot.fake
    await trader_with_sol_long(bot.services, ALICE)
    text = await reply_to(fake, GROUP, ALICE, "/positions", chat_type="group")
    assert "private chat" in text
    await fake.wait_for(lambda: any("SOL/USDT:USDT long" in (m.text or "") for m in fake.sent(ALICE)))


async def test_429_storm_every_message_delivered_in_order(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    counts = {ALICE: 12, BOB: 12, GROUP: 4}  # groups get one message per 3 s
    async with services.sessions.begin() as session:
        for i in range(12):
            for chat, n in counts.items():
                if i < n:
                    await outbox_repo.enqueue(
                        session, platform="telegram", recipient=str(chat), payload=payload_of(Outbound(f"alert {i}"))
                    )
    fake.fail_next("sendMessage", status=429, retry_after=1, count=4)
    # The server's own delivery worker picks the rows up.
    await fake.wait_for(lambda: sum(len(fake.sent(c)) for c in counts) == 28, timeout=90)
    assert sum(1 for c in fake.calls if c.method == "sendMessage" and c.status == 429) == 4
    for chat, n in counts.items():
        assert [m.text for m in fake.sent(chat)] == [f"alert {i}" for i in range(n)]
    for _ in range(50):  # the worker marks a row sent right after the API answered
        async with services.sessions() as session:
            statuses = {r.status for r in (await session.scalars(select(Outbox))).all()}
        if statuses == {OutboxStatus.SENT.value}:
            break
        await asyncio.sleep(0.1)
    assert statuses == {OutboxStatus.SENT.value}


async def test_403_marks_the_recipient_inactive(bot: Running) -> None:
    fake, services = bot.fake, bot.services
    await reply_to(fake, BOB, BOB, "/help")  # BOB exists as a user
    fake.block_chat(BOB)  # then blocks the bot
    async with services.sessions.begin() as session:
        bob = (await session.scalars(select(User).where(User.platform_user_id == str(BOB)))).one()
        await outbox_repo.enqueue(
            session, platform="telegram", recipient=str(BOB), payload={"text": "hi"}, user_id=bob.id
        )

    async def failed() -> bool:
        async with services.sessions() as session:
            return (await session.scalars(select(Outbox))).one().status == OutboxStatus.FAILED.value

    for _ in range(100):
        if await failed():
            break
        await asyncio.sleep(0.1)
    async with services.sessions() as session:
        assert (await session.scalars(select(Outbox))).one().status == OutboxStatus.FAILED.value
        assert not (await session.get(User, bob.id)).active  # type: ignore[union-attr]
    assert not [m for m in fake.sent(BOB) if m.text == "hi"]


async def test_webhook_mode_checks_the_secret(fake: FakeTelegram, sqlite_url: str, tmp_path: Path) -> None:
    port = free_port()
    settings = bot_settings(
        fake,
        sqlite_url,
        tmp_path,
        api_port=port,
        mode="webhook",
        webhook_url="https://bot.example.com/telegram/webhook",
        webhook_secret="s3cret-token",
    )
    async with telegram_services(settings) as services, running(services, fake):
        assert fake.webhook == {"url": "https://bot.example.com/telegram/webhook", "secret_token": "s3cret-token"}
        # The reverse proxy in front of the API: Telegram's posts reach the local port.
        fake.webhook["url"] = f"http://127.0.0.1:{port}/telegram/webhook"
        text = await reply_to(fake, ALICE, ALICE, "/price sol")
        assert "SOL/USDT:USDT" in text
        async with httpx.AsyncClient() as client:
            bad = await client.post(
                f"http://127.0.0.1:{port}/telegram/webhook",
                json={"update_id": 999, "message": {}},
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            )
            health = await client.get(f"http://127.0.0.1:{port}/health")
        assert bad.status_code == 403
        assert health.json()["database"] is True


async def test_model_answer_is_streamed_by_edits_at_most_once_per_second(
    fake: FakeTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    words = [f"word{i} " for i in range(14)]
    async with FakeOpenAIServer(models=["bastion"]) as model:
        model.script(Reply.stream(["The market is quiet. ", *words], chunk_delay_s=0.25))
        settings = bot_settings(fake, sqlite_url, tmp_path)
        settings.model.base_url = model.base_url
        async with telegram_services(settings) as services, running(services, fake):
            fake.user_message(ALICE, ALICE, "how does the market feel today?")
            await fake.wait_for(lambda: any("word13" in (m.plain or "") for m in fake.sent(ALICE)), timeout=20)
            # The final edit waits for its slot: waited for, not slept for 1.2 s, which a loaded machine outlasts.
            await fake.wait_for(
                lambda: any("word13" in (t := m.plain or "") and not t.endswith("…") for m in fake.sent(ALICE)),
                timeout=20,
            )
    (msg,) = fake.sent(ALICE)
    assert len(msg.edits) >= 2  # shown while the tokens were arriving, then completed
    assert "word13" in (msg.plain or "") and not (msg.plain or "").endswith("…")
    edit_times = [c.at for c in fake.calls if c.method == "editMessageText" and c.status == 200]
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(edit_times))
