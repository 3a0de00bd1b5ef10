"""The fake Bot API's state across calls: photos and their file ids, edits, commands, chats, webhook, getUpdates."""

from __future__ import annotations

import asyncio
import functools
import socket
import struct

import httpx
import pytest

from tests.fakes.conftest import BotApi
from tests.fakes.telegram_api import FakeTelegram

_GIF = b"GIF89a" + struct.pack("<HH", 300, 200)
_KEYBOARD = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}


def _send_gif(api: BotApi, data: bytes = _GIF) -> httpx.Response:
    return api.client.post("sendPhoto", data={"chat_id": "42", "photo": "attach://pic"}, files={"pic": ("a.gif", data)})


def test_photos_uploaded_by_attach_reused_by_file_id_or_linked_by_url(api: BotApi, tg: FakeTelegram) -> None:
    uploaded = _send_gif(api).json()["result"]["photo"]
    assert [(p["width"], p["height"]) for p in uploaded] == [(90, 60), (300, 200)]
    again = api.ok("sendPhoto", chat_id=42, photo=uploaded[-1]["file_id"])["photo"][-1]
    assert (again["width"], again["height"], again["file_size"]) == (300, 200, len(_GIF))
    linked = api.ok("sendPhoto", chat_id=42, photo="https://x.y/chart.png")["photo"][-1]
    assert (linked["width"], linked["height"]) == (800, 600)
    assert [m.photo_size for m in tg.sent()] == [len(_GIF), len(_GIF), None]
    assert tg.sent()[0].photo_bytes == _GIF


def test_an_upload_that_is_empty_or_no_image(api: BotApi, tg: FakeTelegram) -> None:
    assert _send_gif(api, b"").json()["description"] == "Bad Request: file must be non-empty"
    assert _send_gif(api, b"%PDF-1.7").json()["description"] == "Bad Request: IMAGE_PROCESS_FAILED"
    assert tg.sent() == []
    tg.validate_photos = False
    photo = _send_gif(api, b"%PDF-1.7").json()["result"]["photo"][-1]
    assert (photo["width"], photo["height"]) == (512, 512)


def test_edits_must_fit_the_message(api: BotApi, tg: FakeTelegram) -> None:
    photo = _send_gif(api).json()["result"]["message_id"]
    text = api.ok("sendMessage", chat_id=42, text="hello")["message_id"]
    users = tg.user_message(chat_id=42, user_id=42, text="hi bot")["message"]["message_id"]

    def refused(method: str, message_id: int, **params: str) -> str:
        return api.error(method, chat_id=42, message_id=message_id, **params)[1].removeprefix("Bad Request: ")

    assert refused("editMessageText", photo, text="x") == "there is no text in the message to edit"
    assert refused("editMessageCaption", text, caption="x") == "there is no caption in the message to edit"
    assert refused("editMessageText", users, text="x") == "message can't be edited"
    assert refused("editMessageCaption", photo, caption="c" * 1025) == "message caption is too long"
    assert refused("editMessageText", text, text=" ") == "message text is empty"
    assert refused("editMessageText", text, text="x" * 4097) == "message is too long"
    api.ok("editMessageCaption", chat_id=42, message_id=photo, caption="<b>up</b>", parse_mode="HTML")
    again = refused("editMessageCaption", photo, caption="<b>up</b>", parse_mode="HTML")
    assert again.startswith("message is not modified")
    assert [(m.text, m.caption, m.plain, m.edits) for m in tg.sent()] == [
        (None, "<b>up</b>", "up", ["<b>up</b>"]),
        ("hello", None, "hello", []),
    ]


def test_commands_per_scope_can_be_deleted(api: BotApi, tg: FakeTelegram) -> None:
    group = {"type": "all_group_chats"}
    api.ok("setMyCommands", commands=[{"command": "start", "description": "Start"}])
    api.ok("setMyCommands", commands=[{"command": "price", "description": "Price"}], scope=group)
    assert api.ok("deleteMyCommands", scope=group) is True
    assert api.ok("getMyCommands", scope=group) == []
    assert api.ok("getMyCommands") == [{"command": "start", "description": "Start"}]
    assert api.ok("setMyDescription", description="Trading assistant") is True  # accepted, nothing to keep


def test_chat_members_chat_actions_and_blocked_chats(api: BotApi, tg: FakeTelegram) -> None:
    tg.chat_admins[-100] = {7}
    assert api.ok("getChatMember", chat_id=-100, user_id=7)["status"] == "creator"
    assert api.ok("getChatMember", chat_id=-100, user_id=8) == {
        "status": "member",
        "user": {"id": 8, "is_bot": False, "first_name": "User 8"},
    }
    assert api.ok("sendChatAction", chat_id=42, action="typing") is True
    tg.block_chat(-100)
    assert api.error("sendMessage", chat_id=-100, text="hi") == (403, "Forbidden: bot was kicked from the group chat")
    tg.unblock_chat(-100)
    api.ok("sendMessage", chat_id=-100, text="hi")
    assert tg.chat_actions == [(42, "typing")]
    assert [(m.chat_id, m.text) for m in tg.sent()] == [(-100, "hi")]


def test_webhook_set_with_allowed_updates_then_deleted_with_its_queue(api: BotApi, tg: FakeTelegram) -> None:
    api.ok("setWebhook", url="https://bot.example/hook", allowed_updates=["callback_query"], max_connections=5)
    info = api.ok("getWebhookInfo")
    assert (info["url"], info["max_connections"], info["allowed_updates"]) == (
        "https://bot.example/hook",
        5,
        ["callback_query"],
    )
    assert api.ok("setWebhook", url="") is True  # an empty URL removes the webhook
    assert tg.webhook is None and api.ok("getWebhookInfo")["url"] == ""
    tg.user_message(chat_id=42, user_id=42, text="queued")
    assert len(tg.pending_updates()) == 1
    api.ok("deleteWebhook", drop_pending_updates=True)
    assert tg.pending_updates() == []


async def test_a_webhook_that_cannot_be_reached_is_recorded_as_its_last_error(api: BotApi, tg: FakeTelegram) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mid = api.ok("sendMessage", chat_id=42, text="pick", reply_markup=_KEYBOARD)["message_id"]
    api.ok("setWebhook", url=f"http://127.0.0.1:{port}/hook", allowed_updates=["callback_query"])
    tg.user_message(chat_id=42, user_id=42, text="hello")  # not an allowed kind: never posted
    tg.press_button(chat_id=42, user_id=42, message_id=mid, data="go")
    await tg.wait_for(lambda: tg.webhook_deliveries == [0])
    assert api.ok("getWebhookInfo")["last_error_message"] == "Connection failed: ConnectError"


def test_an_update_for_a_webhook_needs_the_server_running() -> None:
    fake = FakeTelegram()
    fake.webhook = {"url": "https://bot.example/hook", "secret_token": None}
    with pytest.raises(RuntimeError, match="not running"):
        fake.push_update({"message": {"text": "hi"}})


def test_get_updates_with_a_negative_offset_and_allowed_updates(api: BotApi, tg: FakeTelegram) -> None:
    for text in ("one", "two", "three"):
        tg.user_message(chat_id=42, user_id=42, text=text)
    assert [u["message"]["text"] for u in api.ok("getUpdates", offset=-1)] == ["three"]
    assert api.ok("getUpdates", allowed_updates=["callback_query"]) == []  # the message update is dropped
    assert tg.pending_updates() == []


async def test_stopping_answers_a_long_poll_in_progress_with_no_updates(tg: FakeTelegram) -> None:
    async with httpx.AsyncClient(base_url=f"{tg.base_url}{tg.token}/", timeout=10) as client:
        poll = asyncio.create_task(client.post("getUpdates", json={"timeout": 30}))
        await tg.wait_for(lambda: any(c.method == "getUpdates" for c in tg.calls))
        await asyncio.to_thread(tg.stop)
        response = await asyncio.wait_for(poll, 5)
    assert response.json() == {"ok": True, "result": []}


def test_a_reply_to_a_missing_message_is_refused_unless_sent_without_reply(api: BotApi, tg: FakeTelegram) -> None:
    missing = {"message_id": 99}
    assert api.error("sendMessage", chat_id=42, text="re", reply_parameters=missing) == (
        400,
        "Bad Request: message to be replied not found",
    )
    sent = api.ok(
        "sendMessage", chat_id=42, text="re", reply_parameters={**missing, "allow_sending_without_reply": True}
    )
    assert "reply_to_message" not in sent
    assert [(m.text, m.reply_to_message_id) for m in tg.sent()] == [("re", None)]


def test_users_cannot_reply_to_or_press_what_is_not_there(api: BotApi, tg: FakeTelegram) -> None:
    with pytest.raises(ValueError, match="has no message 9 to reply to"):
        tg.user_message(chat_id=42, user_id=42, text="re", reply_to_message_id=9)
    mid = api.ok("sendMessage", chat_id=42, text="pick", reply_markup=_KEYBOARD)["message_id"]
    api.ok("deleteMessage", chat_id=42, message_id=mid)
    with pytest.raises(ValueError, match="was deleted"):
        tg.press_button(chat_id=42, user_id=42, message_id=mid, data="go", strict=True)
    assert tg.pending_updates() == []


async def test_activity_counts_rates_and_a_timeout_that_names_the_condition(api: BotApi, tg: FakeTelegram) -> None:
    assert FakeTelegram().cpu_s() == 0.0  # not started: no server thread
    api.ok("sendMessage", chat_id=42, text="a")
    await asyncio.sleep(0.01)
    api.ok("sendMessage", chat_id=7, text="b")
    assert (tg.sent_count(), tg.sent_count(42), tg.sent_count(1)) == (2, 1, 0)
    assert (tg.max_rate(60), tg.max_rate(0.001)) == (2, 1)
    assert tg.cpu_s() > 0
    with pytest.raises(
        AssertionError, match=r"^condition functools\.partial\(.*not met within 0\.05 s; last API calls"
    ):
        await tg.wait_for(functools.partial(bool, 0), timeout=0.05)
