"""The fake Telegram Bot API server, driven by real python-telegram-bot objects."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.fakes.telegram_api import FakeTelegram

USER = 42
GROUP = -100500


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(fake.token, base_url=fake.base_url) as client:
        yield client


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _ReadyServer(uvicorn.Server):
    """uvicorn server that sets `ready` once it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class _Receiver:
    """A tiny webhook endpoint on a free port, served on the test's own loop."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""
        self._server: _ReadyServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def _hook(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return Response(status_code=self.status)

    async def __aenter__(self) -> _Receiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = _ReadyServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await asyncio.wait_for(self._server.ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


async def test_get_me(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (fake.bot_id, "bastion_test_bot", True)
    assert bot.username == "bastion_test_bot"
    assert fake.calls[0].method == "getMe" and fake.calls[0].status == 200


async def test_send_message_is_recorded_and_returned(fake: FakeTelegram, bot: Bot) -> None:
    first = await bot.send_message(USER, "hello")
    second = await bot.send_message(USER, "<b>BTC</b> &lt; 70k", parse_mode=ParseMode.HTML)
    await bot.send_message(GROUP, "group hello")
    assert first.message_id == 1 and second.message_id == 2
    assert first.from_user is not None and first.from_user.id == fake.bot_id
    assert first.chat.id == USER and first.chat.type == "private"
    assert second.text == "BTC < 70k"
    assert second.entities[0].type == "bold" and (second.entities[0].offset, second.entities[0].length) == (0, 3)
    assert [m.text for m in fake.sent(USER)] == ["hello", "<b>BTC</b> &lt; 70k"]
    assert fake.sent(USER)[1].plain == "BTC < 70k" and fake.sent(USER)[1].parse_mode == "HTML"
    assert [(m.chat_id, m.message_id) for m in fake.sent()] == [(USER, 1), (USER, 2), (GROUP, 1)]
    sends = [c for c in fake.calls if c.method == "sendMessage"]
    assert sends[0].params == {"chat_id": USER, "text": "hello"}
    assert fake.max_rate(1.0) == 3 and fake.max_rate(1.0, chat_id=GROUP) == 1


async def test_edit_and_not_modified(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Confirm", callback_data="confirm:1")]])
    sent = await bot.send_message(USER, "Order ready", reply_markup=keyboard)
    edited = await bot.edit_message_text("Order placed", chat_id=USER, message_id=sent.message_id)
    assert isinstance(edited, type(sent)) and edited.text == "Order placed" and edited.reply_markup is None
    record = fake.message(USER, sent.message_id)
    assert record is not None
    assert (record.text, record.edits, record.reply_markup) == ("Order placed", ["Order placed"], None)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("Order placed", chat_id=USER, message_id=sent.message_id)
    await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id, reply_markup=keyboard)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(chat_id=USER, message_id=sent.message_id, reply_markup=keyboard)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=USER, message_id=99)


@pytest.mark.parametrize(
    "text",
    [
        "price < 70k",  # unescaped <
        "Tom & Jerry",  # & that is not an entity
        "<b>bold",  # unclosed
        "<b><i>x</b></i>",  # crossed
        "line<br>break",  # unsupported tag
        '<span class="x">s</span>',  # span without tg-spoiler
        "</b>",  # unexpected end tag
    ],
)
async def test_html_parse_errors(bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)Can't parse entities"):
        await bot.send_message(USER, text, parse_mode=ParseMode.HTML)


async def test_html_supported_tags(bot: Bot) -> None:
    text = (
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>"
        '<a href="https://example.com/?a=1&amp;b=2">link</a><code>c</code>'
        '<pre><code class="language-python">x = 1</code></pre><tg-spoiler>t</tg-spoiler>'
        '<span class="tg-spoiler">p</span><blockquote>q</blockquote> 5 &gt; 3 &#8364; &#x1F600;'
    )
    message = await bot.send_message(USER, text, parse_mode="HTML")
    assert message.text == "bsieunskdlinkcx = 1tpq 5 > 3 € 😀"
    link = next(e for e in message.entities if e.type == "text_link")
    assert link.url == "https://example.com/?a=1&b=2"
    pre = next(e for e in message.entities if e.type == "pre")
    assert pre.language == "python"


async def test_markdown_v2(bot: Bot) -> None:
    text = r"*Entry* 64\.5k \- _risk_ 1\% [chart](https://x.y/a\)b) `a.b`"
    ok = await bot.send_message(USER, text, parse_mode="MarkdownV2")
    assert ok.text == "Entry 64.5k - risk 1% chart a.b"
    assert [e.type for e in ok.entities] == ["bold", "italic", "text_link", "code"]
    assert ok.entities[2].url == "https://x.y/a)b"
    with pytest.raises(BadRequest, match=r"(?i)reserved"):
        await bot.send_message(USER, "Price 64.5k", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)Can't find end of Bold entity"):
        await bot.send_message(USER, r"*bold", parse_mode="MarkdownV2")


async def test_text_length_and_empty(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(USER, "x" * 4096)
    await bot.send_message(USER, "<b>" + "&lt;" * 4096 + "</b>", parse_mode="HTML")  # 4096 characters once parsed
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(USER, "&amp;" * 4097, parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")
    assert len(fake.sent(USER)) == 2
    assert [c.status for c in fake.calls if c.method == "sendMessage"] == [200, 200, 400, 400, 400]


@pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
async def test_fail_next_429_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", count=2)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(USER, "hi")
        assert _seconds(caught.value.retry_after) == 1  # an int, or a timedelta with PTB_TIMEDELTA=true
    await bot.send_message(USER, "hi")
    assert [c.status for c in fake.calls if c.method == "sendMessage"] == [429, 429, 200]
    assert len(fake.sent(USER)) == 1


async def test_fail_next_other_statuses(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("editMessageText", status=400, description="Bad Request: message can't be edited")
    fake.fail_next("sendMessage", status=403)
    with pytest.raises(Forbidden):
        await bot.send_message(USER, "hi")
    message = await bot.send_message(USER, "hi")
    with pytest.raises(BadRequest, match=r"(?i)can't be edited"):
        await bot.edit_message_text("new", chat_id=USER, message_id=message.message_id)


async def test_block_chat_forbids_sends_and_edits(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(USER, "hi")
    fake.block_chat(USER)
    with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
        await bot.send_message(USER, "again")
    with pytest.raises(Forbidden):
        await bot.edit_message_text("edit", chat_id=USER, message_id=message.message_id)
    with pytest.raises(Forbidden):
        await bot.send_photo(USER, _png(4, 4))
    await bot.send_message(USER + 1, "someone else")
    assert [m.chat_id for m in fake.sent()] == [USER, USER + 1]


async def test_send_photo_with_bytes(fake: FakeTelegram, bot: Bot) -> None:
    image = _png(64, 32)
    message = await bot.send_photo(USER, image, caption="<b>BTC</b> 4h", parse_mode="HTML")
    assert message.caption == "BTC 4h" and message.photo[-1].width == 64 and message.photo[-1].height == 32
    record = fake.sent(USER)[0]
    assert (record.photo_size, record.caption, record.text, record.photo_bytes) == (
        len(image),
        "<b>BTC</b> 4h",
        None,
        image,
    )
    again = await bot.send_photo(USER, message.photo[-1].file_id)  # re-send by file_id
    assert fake.sent(USER)[1].photo_size == len(image) and again.message_id == 2
    await bot.edit_message_caption(chat_id=USER, message_id=message.message_id, caption="BTC 1d")
    assert fake.sent(USER)[0].caption == "BTC 1d" and fake.sent(USER)[0].edits == ["BTC 1d"]
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(USER, b"not an image")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(USER, image, caption="x" * 1025)


async def test_inline_keyboard_and_button_press(fake: FakeTelegram, bot: Bot) -> None:
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)Button_data_invalid"):
        await bot.send_message(USER, "pick", reply_markup=too_long)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="y" * 64)]])
    message = await bot.send_message(USER, "pick", reply_markup=keyboard)
    assert fake.sent(USER)[0].reply_markup == keyboard.to_dict()
    pressed = fake.press_button(USER, USER, message.message_id, "y" * 64)
    with pytest.raises(ValueError, match=r"no button"):
        fake.press_button(USER, USER, message.message_id, "nope", strict=True)
    with pytest.raises(ValueError, match=r"no message 99"):
        fake.press_button(USER, USER, 99, "y")
    updates = await bot.get_updates()
    assert len(updates) == 1 and updates[0].update_id == pressed["update_id"]
    query = updates[0].callback_query
    assert query is not None and query.data == "y" * 64 and query.from_user.id == USER
    assert query.message is not None and query.message.message_id == message.message_id
    assert await query.answer("Done", show_alert=True)
    assert fake.callback_answers() == [{"callback_query_id": query.id, "text": "Done", "show_alert": True}]
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer()
    # A stale press (keyboard already edited away) is allowed unless strict, as real clients can send one.
    await bot.edit_message_text("picked", chat_id=USER, message_id=message.message_id)
    stale = fake.press_button(USER, USER, message.message_id, "y" * 64)
    assert stale["callback_query"]["message"]["text"] == "picked"
    assert "reply_markup" not in stale["callback_query"]["message"]


async def test_delete_message(fake: FakeTelegram, bot: Bot) -> None:
    mine = await bot.send_message(USER, "bye")
    theirs = fake.user_message(USER, USER, "secret key")["message"]["message_id"]
    assert await bot.delete_message(USER, mine.message_id)
    assert await bot.delete_message(USER, theirs)
    assert fake.deleted == [(USER, 1), (USER, 2)]
    assert fake.sent(USER)[0].deleted
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, mine.message_id)


async def test_set_my_commands(fake: FakeTelegram, bot: Bot) -> None:
    commands = [BotCommand("start", "Start the bot"), BotCommand("price", "Current price of a symbol")]
    assert await bot.set_my_commands(commands)
    assert fake.commands == [
        {"command": "start", "description": "Start the bot"},
        {"command": "price", "description": "Current price of a symbol"},
    ]
    assert [c.command for c in await bot.get_my_commands()] == ["start", "price"]
    with pytest.raises(BadRequest, match=r"(?i)Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Price", "uppercase is not allowed")])
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("price", "")])
    assert len(fake.commands) == 2


async def test_get_updates_and_offset(fake: FakeTelegram, bot: Bot) -> None:
    first = fake.user_message(USER, USER, "/start")
    second = fake.user_message(GROUP, USER, "/price@bastion_test_bot BTC", chat_type="supergroup")
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    start = updates[0].message
    assert start is not None and start.text == "/start" and start.entities[0].type == "bot_command"
    price = updates[1].message
    assert price is not None and price.chat.type == "supergroup"
    assert (price.entities[0].type, price.entities[0].length) == ("bot_command", len("/price@bastion_test_bot"))
    assert [u.update_id for u in await bot.get_updates()] == [first["update_id"], second["update_id"]]
    assert [u.update_id for u in await bot.get_updates(offset=second["update_id"])] == [second["update_id"]]
    assert await bot.get_updates(offset=second["update_id"] + 1) == ()
    assert fake.pending_updates() == []


async def test_reply_to_bot_message_and_mention(fake: FakeTelegram, bot: Bot) -> None:
    sent = await bot.send_message(GROUP, "BTC alert")
    update = fake.user_message(
        GROUP, USER, "hey @bastion_test_bot why?", chat_type="group", reply_to_message_id=sent.message_id
    )
    assert update["message"]["message_id"] == 2
    (got,) = await bot.get_updates()
    message = got.message
    assert message is not None and message.reply_to_message is not None
    assert message.reply_to_message.from_user is not None and message.reply_to_message.from_user.id == fake.bot_id
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("mention", 4, 17)]
    reply = await bot.send_message(GROUP, "because", reply_to_message_id=message.message_id)
    assert reply.reply_to_message is not None and reply.reply_to_message.message_id == message.message_id
    assert fake.sent(GROUP)[-1].reply_to_message_id == message.message_id
    with pytest.raises(BadRequest, match=r"(?i)replied not found"):
        await bot.send_message(GROUP, "x", reply_to_message_id=999)


async def test_long_poll_returns_when_an_update_arrives(fake: FakeTelegram, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=timedelta(seconds=0.3)) == ()
    assert 0.25 <= time.monotonic() - started < 4  # the poll's timeout, not the client's 5 s read timeout (loaded CI)

    async def later() -> None:
        await asyncio.sleep(0.2)
        fake.user_message(USER, USER, "ping")

    task = asyncio.create_task(later())
    started = time.monotonic()
    updates = await bot.get_updates(timeout=timedelta(seconds=5))
    elapsed = time.monotonic() - started
    await task
    assert len(updates) == 1 and updates[0].message is not None and updates[0].message.text == "ping"
    assert 0.15 <= elapsed < 4  # at the update, not at the 5 s poll timeout (4 s leaves room for a loaded CI)


async def test_newer_get_updates_terminates_older(fake: FakeTelegram, bot: Bot) -> None:
    async with Bot(fake.token, base_url=fake.base_url) as other:
        older = asyncio.create_task(bot.get_updates(timeout=timedelta(seconds=5)))
        await fake.wait_for(lambda: any(c.method == "getUpdates" and c.status == 0 for c in fake.calls))
        assert await other.get_updates() == ()
        with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
            await older


async def test_webhook_delivery_and_conflict(fake: FakeTelegram, bot: Bot) -> None:
    queued = fake.user_message(USER, USER, "before the webhook")
    async with _Receiver() as receiver:
        assert await bot.set_webhook(receiver.url, secret_token="s3cret")
        assert fake.webhook == {"url": receiver.url, "secret_token": "s3cret"}
        pushed = fake.user_message(USER, USER, "/start")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) == 2)
        assert fake.webhook_deliveries == [200, 200]
        bodies = [Update.de_json(json.loads(body), bot) for _, body in receiver.requests]
        assert [u.update_id for u in bodies] == [queued["update_id"], pushed["update_id"]]
        assert all(headers["x-telegram-bot-api-secret-token"] == "s3cret" for headers, _ in receiver.requests)
        info = await bot.get_webhook_info()
        assert info.url == receiver.url and info.pending_update_count == 0
        with pytest.raises(Conflict, match=r"(?i)webhook is active"):
            await bot.get_updates()
        receiver.status = 500
        fake.user_message(USER, USER, "fails")
        await fake.wait_for(lambda: len(fake.webhook_deliveries) == 3)
        assert fake.webhook_deliveries[-1] == 500
        assert (await bot.get_webhook_info()).last_error_message == "Wrong response from the webhook: 500"
    assert await bot.delete_webhook()
    assert fake.webhook is None
    fake.user_message(USER, USER, "polling again")
    assert len(await bot.get_updates()) == 1


async def test_set_webhook_ends_a_long_poll(fake: FakeTelegram, bot: Bot) -> None:
    async with Bot(fake.token, base_url=fake.base_url) as other:
        poll = asyncio.create_task(bot.get_updates(timeout=timedelta(seconds=5)))
        await fake.wait_for(lambda: any(c.method == "getUpdates" and c.status == 0 for c in fake.calls))
        await other.set_webhook("http://127.0.0.1:9/hook", drop_pending_updates=True)
        with pytest.raises(Conflict, match=r"(?i)terminated by setWebhook"):
            await poll


async def test_raw_http_json_body_unknown_method_and_bad_token(fake: FakeTelegram) -> None:
    async with httpx.AsyncClient() as client:
        url = f"{fake.base_url}{fake.token}"
        sent = (await client.post(f"{url}/sendMessage", json={"chat_id": USER, "text": "json body"})).json()
        assert sent["ok"] is True and sent["result"]["text"] == "json body"
        unknown = await client.post(f"{url}/sendDice", data={"chat_id": str(USER)})
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        wrong = await client.post(f"{fake.base_url}1:WRONG/getMe")
        assert wrong.status_code == 401 and wrong.json()["description"] == "Unauthorized"
        fake.fail_next("getMe", retry_after=7)
        limited = (await client.get(f"{url}/getMe")).json()
    assert limited == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }


async def test_wait_for_times_out_with_context(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(USER, "something")
    with pytest.raises(AssertionError, match=r"(?i)last sent messages.*something"):
        await fake.wait_for(lambda: False, timeout=0.05)


async def test_application_polling_end_to_end(fake: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("hi")

    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=timedelta(seconds=1))
        fake.user_message(USER, USER, "/start")
        fake.user_message(GROUP, USER, "/start@bastion_test_bot", chat_type="group")
        fake.user_message(GROUP, USER, "/start@other_bot", chat_type="group")  # not for us
        await fake.wait_for(lambda: len(fake.sent()) == 2)
        stopping = time.monotonic()
        await app.updater.stop()
        await app.stop()
    assert time.monotonic() - stopping < 5.0  # stopping does not hang (5 s, not 2 s: a loaded CI machine stalls)
    assert [(m.chat_id, m.text) for m in fake.sent()] == [(USER, "hi"), (GROUP, "hi")]
    assert fake.pending_updates() == []  # the final getUpdates confirmed everything
    methods = [c.method for c in fake.calls]
    assert methods[:2] == ["getMe", "deleteWebhook"]
