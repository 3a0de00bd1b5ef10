"""PTB on the aiohttp backend (bot/telegram/request.py) over real HTTP against the fake Bot API: the same requests
as PTB's httpx backend (form fields, multipart uploads with their fields), Telegram's errors as PTB's exceptions,
timeouts and refused connections as TimedOut and NetworkError, and the channel's replies sent through it."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator

import pytest
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.core.messages import Button, Outbound
from bot.telegram.convert import retry_seconds
from bot.telegram.replier import TelegramOut
from bot.telegram.request import AiohttpRequest
from tests.fakes.telegram_api import FakeTelegram

CHAT = 4242


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server with one user who started a private chat."""
    async with FakeTelegram() as server:
        server.user_message(CHAT, CHAT, "/start")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    """A PTB bot whose requests go through AiohttpRequest."""
    async with Bot(fake.token, base_url=fake.base_url, request=AiohttpRequest(4)) as b:
        yield b


def png() -> bytes:
    """A small real PNG (the fake reads its header like Telegram does)."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), "white").save(buf, format="PNG")
    return buf.getvalue()


async def test_a_message_with_buttons_arrives_as_sent(bot: Bot, fake: FakeTelegram) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data="a:1")]])
    msg = await bot.send_message(CHAT, "<b>BTC</b> 95,000 &amp; rising", parse_mode="HTML", reply_markup=markup)
    [sent] = fake.sent(CHAT)
    assert (sent.message_id, sent.text, sent.parse_mode) == (msg.message_id, "<b>BTC</b> 95,000 &amp; rising", "HTML")
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "Approve", "callback_data": "a:1"}]]}


async def test_an_upload_is_multipart_with_its_other_fields(bot: Bot, fake: FakeTelegram) -> None:
    data = png()
    await bot.send_photo(CHAT, photo=data, caption="chart <i>4h</i>", parse_mode="HTML")
    [sent] = fake.sent(CHAT)
    assert (sent.caption, sent.parse_mode, sent.photo_bytes) == ("chart <i>4h</i>", "HTML", data)


async def test_telegram_errors_become_ptb_exceptions(bot: Bot, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(CHAT, "hi")
    assert retry_seconds(flood.value) == 7
    with pytest.raises(BadRequest, match="parse entities"):
        await bot.send_message(CHAT, "<b>unclosed", parse_mode="HTML")
    fake.block_chat(CHAT)
    with pytest.raises(Forbidden):
        await bot.send_message(CHAT, "blocked")
    assert fake.sent(CHAT) == []


async def test_a_server_that_does_not_answer_times_out() -> None:
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await done.wait()  # never answers while the client waits
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = AiohttpRequest(1, read_timeout=0.3)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"http://127.0.0.1:{port}/botX/getMe")
    finally:
        done.set()
        await request.shutdown()
        server.close()


async def test_a_refused_connection_is_a_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    request = AiohttpRequest(1)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as refused:
            await request.post(f"http://127.0.0.1:{port}/botX/getMe")
        assert not isinstance(refused.value, TimedOut)
        assert "aiohttp.ClientConnectorError" in str(refused.value)
    finally:
        await request.shutdown()


async def test_a_request_before_initialize_or_after_shutdown_is_refused(fake: FakeTelegram) -> None:
    request = AiohttpRequest(1)
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{fake.base_url}{fake.token}/getMe", "POST")
    await request.initialize()
    status, body = await request.do_request(f"{fake.base_url}{fake.token}/getMe", "POST")
    assert status == 200 and b'"is_bot":true' in body.replace(b" ", b"")
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{fake.base_url}{fake.token}/getMe", "POST")


async def test_the_channel_reply_returns_the_ref_of_the_message_with_the_buttons(bot: Bot, fake: FakeTelegram) -> None:
    out = TelegramOut(bot)
    long_text = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(8))  # over 4096: split in parts
    ref = await out.send(CHAT, Outbound(long_text, buttons=[Button("Approve", "a:tok")]))
    sent = fake.sent(CHAT)
    assert len(sent) >= 2
    with_buttons = [m for m in sent if m.reply_markup]
    assert [m.message_id for m in with_buttons] == [sent[-1].message_id]  # only the last part carries them
    assert ref == f"{CHAT}:{sent[-1].message_id}"
