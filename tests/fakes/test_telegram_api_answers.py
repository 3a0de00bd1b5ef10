"""The fake Bot API's error answers: Telegram's envelope, status and description for each kind of bad request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.conftest import BotApi
from tests.fakes.telegram_api import FakeTelegram

_COMMAND = {"command": "start", "description": "Start"}


@pytest.mark.parametrize(
    ("method", "params", "description"),
    [
        ("sendMessage", {"text": "hi"}, "chat_id is empty"),
        ("sendMessage", {"chat_id": "@nobody", "text": "hi"}, "chat not found"),
        ("sendMessage", {"chat_id": 42, "text": " \n"}, "message text is empty"),
        ("sendMessage", {"chat_id": 42, "text": "x" * 4097}, "message is too long"),
        ("sendPhoto", {"chat_id": 42, "photo": "https://x.y/", "caption": "c" * 1025}, "message caption is too long"),
        ("sendPhoto", {"chat_id": 42, "photo": "AgACAgFAKE999999"}, "wrong file identifier/HTTP URL specified"),
        ("sendPhoto", {"chat_id": 42}, "there is no photo in the request"),
        ("editMessageText", {"inline_message_id": "1", "text": "x"}, "MESSAGE_ID_INVALID"),
        ("editMessageText", {"chat_id": 42, "text": "x"}, "message identifier is not specified"),
        ("answerCallbackQuery", {"callback_query_id": "1", "text": "x" * 201}, "MESSAGE_TOO_LONG"),
        ("setMyCommands", {"commands": {"start": "Start"}}, "can't parse commands JSON object"),
        ("setMyCommands", {"commands": [_COMMAND] * 101}, "too many commands"),
        ("setMyCommands", {"commands": ["start"]}, "can't parse BotCommand JSON object"),
        ("sendChatAction", {"chat_id": 42, "action": "dancing"}, "wrong parameter action in request"),
        ("getUpdates", {"timeout": "soon"}, "wrong parameter timeout in request"),
        ("getUpdates", {"timeout": True}, "wrong parameter timeout in request"),
        ("getUpdates", {"limit": "many"}, "wrong parameter limit in request"),
        ("getUpdates", {"limit": True}, "wrong parameter limit in request"),
        ("setWebhook", {"url": "ftp://x.y/hook"}, "bad webhook: An HTTPS URL must be provided for webhook"),
        ("setWebhook", {"url": "https://x.y/", "secret_token": "a b"}, "secret token contains unallowed characters"),
    ],
)  # fmt: skip
def test_a_bad_request_is_answered_400_with_telegrams_description(
    shared_api: BotApi, shared_tg: FakeTelegram, method: str, params: dict[str, Any], description: str
) -> None:
    assert shared_api.error(method, **params) == (400, f"Bad Request: {description}")
    assert (shared_tg.calls[-1].method, shared_tg.calls[-1].status) == (method, 400)
    assert shared_tg.sent() == [] and shared_tg.webhook is None and shared_tg.commands == []  # it changed nothing


@pytest.mark.parametrize(
    ("field", "description"),
    [
        ("reply_markup", "can't parse reply keyboard markup JSON object"),
        ("entities", "can't parse entities JSON object"),
    ],
)
def test_form_fields_that_are_not_json_are_refused(shared_api: BotApi, field: str, description: str) -> None:
    response = shared_api.client.post("sendMessage", data={"chat_id": "42", "text": "hi", field: "{not json"})
    assert (response.status_code, response.json()["description"]) == (400, f"Bad Request: {description}")


@pytest.mark.parametrize(
    ("content_type", "body", "description"),
    [
        ("application/json", b"{", "can't parse JSON encoded request"),
        ("application/json", b"[42]", "request body must be a JSON object"),
        ("multipart/form-data", b"chat_id=42", "multipart request without boundary"),
    ],
)
def test_a_body_that_cannot_be_decoded_is_refused_and_recorded(
    shared_api: BotApi, shared_tg: FakeTelegram, content_type: str, body: bytes, description: str
) -> None:
    response = shared_api.client.post("sendMessage", content=body, headers={"Content-Type": content_type})
    assert response.json() == {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}
    last = shared_tg.calls[-1]
    assert (last.method, last.params, last.status) == ("sendMessage", {}, 400)


def test_multipart_parts_without_a_name_or_a_header_end_are_skipped(api: BotApi, tg: FakeTelegram) -> None:
    body = (
        b"--B\r\nContent-Disposition: form-data\r\n\r\nignored\r\n"
        b'--B\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n42\r\n'
        b'--B\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n'
        b'--B\r\nContent-Disposition: form-data; name="text"\r\n'  # no blank line: not a field, text stays "hi"
        b"--B--\r\n"
    )
    response = api.client.post("sendMessage", content=body, headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert response.json()["ok"] is True
    assert [(m.chat_id, m.text) for m in tg.sent()] == [(42, "hi")]


def test_unknown_paths_methods_and_tokens(tg: FakeTelegram, api: BotApi) -> None:
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{tg.url}/nothing/here").json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found",
        }
        wrong_token = client.post(f"{tg.base_url}999:WRONG/getMe").json()
    assert wrong_token == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert api.error("sendCarrierPigeon") == (404, "Not Found")
    assert api.ok("GETME")["username"] == tg.bot_username  # method names are case-insensitive
    assert tg.base_file_url == f"{tg.url}/file/bot"


def test_verbs_other_than_get_and_post_are_refused_405_and_change_nothing(tg: FakeTelegram, api: BotApi) -> None:
    for verb in ("PUT", "DELETE", "PATCH"):
        response = api.client.request(verb, "sendMessage", json={"chat_id": 42, "text": "hi"})
        assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD, POST")
    assert tg.sent() == [] and list(tg.calls) == []
    assert api.client.get("getMe").json()["ok"] is True  # GET is a call like POST
