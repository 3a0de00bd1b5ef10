"""The fake's state: chats, messages (the users' and the bot's), updates, files, and the helpers that read
and write it under its lock."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import threading
import time
from typing import Any

from tests.fakes.telegram_api.protocol import ApiCall, ApiError, Fault, SentMessage, bad
from tests.fakes.telegram_api.wire import int_param
from tests.fakes.threaded import QuickExitServer


class TelegramState:
    """Everything the fake remembers, guarded by one lock; the mixins of `FakeTelegram` read and change it."""

    def __init__(self, token: str, bot_username: str) -> None:
        self.token = token
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 123456
        self.bot_username = bot_username
        self.bot_first_name = "Bastion Test"
        self.validate_photos = True  # reject uploads that are not PNG/JPEG/GIF/WebP/BMP, as Telegram does
        self.calls: list[ApiCall] = []
        self.deleted: list[tuple[int, int]] = []
        self.commands: list[dict[str, Any]] = []
        self.commands_by_scope: dict[str, list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] | None = None
        self.webhook_deliveries: list[int] = []  # HTTP status of each webhook POST; 0 when it could not connect
        self.chat_actions: list[tuple[int, str]] = []
        self.chat_admins: dict[int, set[int]] = {}  # group chat id -> user ids getChatMember calls its owners
        self.port = 0
        self._lock = threading.Lock()
        self._updates: list[dict[str, Any]] = []  # pending for getUpdates, oldest first
        self._next_update_id = 1
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._stopping = False
        self._faults: list[Fault] = []
        self._blocked: set[int] = set()
        self._chats: dict[int, dict[str, Any]] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}  # every message (user's and bot's) by key
        self._deleted_keys: set[tuple[int, int]] = set()
        self._sent: list[SentMessage] = []
        self._sent_per_chat: dict[int, int] = {}
        # (loop, event) of every wait_for in progress: set (on the waiter's loop) whenever the fake's record changes.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event, int | None]] = []
        self._sent_by_key: dict[tuple[int, int], SentMessage] = {}
        self._callback_ids = itertools.count(1)
        self._open_callbacks: set[str] = set()
        self._callback_answers: list[dict[str, Any]] = []
        self._files: dict[str, tuple[int, int, int]] = {}  # file_id -> (size, width, height)
        self._file_ids = itertools.count(1)
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_max_connections = 40
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None  # set (on the server loop) whenever pollers should look again
        self._delivery_queue: asyncio.Queue[dict[str, Any]] | None = None
        self._server: QuickExitServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot as a Telegram User object."""
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name, "username": self.bot_username}

    def _notify(self, chat_id: Any = None) -> None:
        with self._lock:
            waiters = [(loop, changed) for loop, changed, chat in self._waiters if chat is None or chat == chat_id]
        for loop, changed in waiters:
            # Set already: the waiter has not looked yet, and looks after this change (it clears the event before
            # each look). Waking its loop again per answer cost the fake a tenth of its CPU under load.
            if changed.is_set():
                continue
            with contextlib.suppress(RuntimeError):  # that loop closed
                loop.call_soon_threadsafe(changed.set)

    # -- state helpers (call with the lock held unless they take it) -------------------------------

    def _remember_chat(self, chat_id: int, chat_type: str, first_name: str) -> dict[str, Any]:
        if chat_type == "private":
            chat: dict[str, Any] = {"id": chat_id, "type": "private", "first_name": first_name}
        else:
            chat = {"id": chat_id, "type": chat_type, "title": f"Test {chat_type} {abs(chat_id)}"}
        self._chats[chat_id] = chat
        return chat

    def _chat(self, chat_id: int) -> dict[str, Any]:
        known = self._chats.get(chat_id)
        if known is not None:
            return known
        if chat_id > 0:
            return self._remember_chat(chat_id, "private", "User")
        return self._remember_chat(chat_id, "supergroup" if chat_id <= -1_000_000_000_000 else "group", "")

    def _take_message_id(self, chat_id: int, wanted: int | None = None) -> int:
        nxt = self._next_message_id.get(chat_id, 1)
        mid = nxt if wanted is None else wanted
        self._next_message_id[chat_id] = max(nxt, mid + 1)
        return mid

    def _target_chat(self, params: dict[str, Any]) -> int:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad("chat_id is empty")
        if isinstance(raw, bool) or not isinstance(raw, int) or raw == 0:
            raise bad("chat not found")
        with self._lock:
            if raw in self._blocked:
                who = "bot was blocked by the user" if raw > 0 else "bot was kicked from the group chat"
                raise ApiError(403, f"Forbidden: {who}")
        return raw

    def _edit_target(self, params: dict[str, Any]) -> tuple[int, int]:
        if params.get("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")
        if params.get("chat_id") is None or params.get("message_id") is None:
            raise bad("message identifier is not specified")
        return self._target_chat(params), int_param(params["message_id"], "message_id")

    def _editable(self, chat_id: int, mid: int) -> tuple[dict[str, Any], SentMessage]:
        key = (chat_id, mid)
        message = self._messages.get(key)
        if message is None or key in self._deleted_keys:
            raise bad("message to edit not found")
        record = self._sent_by_key.get(key)
        if record is None:
            raise bad("message can't be edited")
        return message, record

    def _reply_target(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any] | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            wanted, lenient = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
            reply_chat = reply.get("chat_id", chat_id)
        else:
            wanted, lenient = params.get("reply_to_message_id"), bool(params.get("allow_sending_without_reply"))
            reply_chat = chat_id
        if wanted is None:
            return None
        key = (int_param(reply_chat, "chat_id"), int_param(wanted, "message_id"))
        found = self._messages.get(key)
        if found is None or key in self._deleted_keys:
            if lenient:
                return None
            raise bad("message to be replied not found")
        return found

    def _bot_message(
        self, chat_id: int, mid: int, reply_to: dict[str, Any] | None, markup: dict[str, Any] | None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": mid,
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
        }
        if reply_to is not None:
            message["reply_to_message"] = without_reply(reply_to)
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        return message

    def _store(self, message: dict[str, Any], record: SentMessage) -> None:
        key = (record.chat_id, record.message_id)
        self._messages[key] = message
        self._sent.append(record)
        self._sent_per_chat[record.chat_id] = self._sent_per_chat.get(record.chat_id, 0) + 1
        self._sent_by_key[key] = record


def without_reply(message: dict[str, Any]) -> dict[str, Any]:
    """A copy of a message without its own reply_to_message, as Telegram nests replied messages one level deep."""
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


def set_or_drop(message: dict[str, Any], key: str, value: Any) -> None:
    """Set a field of a message, or remove it when the value is None."""
    if value is None:
        message.pop(key, None)
    else:
        message[key] = value
