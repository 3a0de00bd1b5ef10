"""A real HTTP server speaking enough of the Telegram Bot API for python-telegram-bot, with users the test drives
and a record of everything the bot did.

    async with FakeTelegram() as tg:
        app = ApplicationBuilder().token(tg.token).base_url(tg.base_url).build()
        ...
        tg.user_message(chat_id=42, user_id=42, text="/start")
        await tg.wait_for(lambda: tg.sent(42))
        assert tg.sent(42)[0].text == "hi"

Requests are decoded the way PTB encodes them (form fields with JSON-dumped complex values, multipart/form-data for
uploads; JSON bodies work too). Answers are Telegram's exact envelopes, so PTB raises its real exceptions
(BadRequest, Forbidden, RetryAfter, Conflict). The server runs on its own event loop in a background thread;
every test-side method is thread-safe and may be called from the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.threaded import QuickExitServer, serve_in_thread

__all__ = ["ApiCall", "FakeTelegram", "SentMessage"]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_BUTTONS = 100
WEBHOOK_TIMEOUT_S = 10.0

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")
_PATH_RE = re.compile(r"^/bot([^/]+)/([A-Za-z0-9_]+)/?$")

# How PTB (and Telegram) type the parameters: everything not listed is a plain string.
_JSON_FIELDS = frozenset(
    [
        "reply_markup",
        "reply_parameters",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "link_preview_options",
        "menu_button",
    ]
)
_INT_FIELDS = frozenset(
    [
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "reply_to_message_id",
        "cache_time",
        "max_connections",
        "user_id",
        "message_thread_id",
    ]
)
_NUMBER_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset(
    [
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "disable_web_page_preview",
        "protect_content",
        "allow_sending_without_reply",
        "has_spoiler",
        "show_caption_above_media",
    ]
)
_BUTTON_ACTIONS = frozenset(
    [
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    ]
)
_CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
_UPDATE_TYPES_OFF_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: fake failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


@dataclass(slots=True)
class ApiCall:
    """One Bot API request as the server received it; `status` is the HTTP status it was answered with."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() on arrival
    status: int = 0  # 0 while a long poll is still waiting


@dataclass(slots=True)
class SentMessage:
    """A message the bot sent (sendMessage or sendPhoto), as it stands now.

    `text` and `caption` are what the bot sent (markup included, before entity parsing); `plain` is the text or
    caption as Telegram shows it (tags and escapes removed). `edits` lists the new text (or caption) of every
    successful edit, in order, so `edits[-1] == text` once the message was edited.
    """

    chat_id: int
    message_id: int
    text: str | None
    caption: str | None
    photo_size: int | None
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    edits: list[str]
    deleted: bool
    at: float
    plain: str | None = None
    reply_to_message_id: int | None = None
    photo_bytes: bytes | None = None


class _ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


@dataclass(slots=True)
class _Fault:
    method: str
    status: int
    description: str
    retry_after: int | None
    left: int


@dataclass(slots=True)
class _Upload:
    name: str
    filename: str
    data: bytes


class FakeTelegram:
    """Telegram Bot API server on 127.0.0.1 (free port) in a background thread; use as an async context manager."""

    def __init__(self, token: str = "123456:TEST", bot_username: str = "bastion_test_bot") -> None:
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
        self._faults: list[_Fault] = []
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
        self._methods = self._method_table()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Bind a free port and serve in a background thread; returns once it accepts connections."""
        with self._lock:
            self._stopping = False
        self._server, self._thread, self.port = serve_in_thread(self._app(), "fake-telegram", self._serve)
        return self

    def stop(self) -> None:
        """Stop serving; long polls in progress answer an empty list at once."""
        with self._lock:
            self._stopping = True
        loop, server = self._loop, self._server
        if loop is not None and server is not None and server.stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(self._stop_on_loop, server)
        if server is not None:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def _stop_on_loop(self, server: QuickExitServer) -> None:
        if self._changed is not None:
            self._changed.set()
        if server.stop_event is not None:
            server.stop_event.set()

    async def _serve(self, server: QuickExitServer, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._delivery_queue = asyncio.Queue()
        server.stop_event = asyncio.Event()
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
            worker = asyncio.create_task(self._deliver_webhooks(client))
            try:
                await server.serve(sockets=[sock])
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
                self._loop = None
                self._changed = None
                self._delivery_queue = None

    async def __aenter__(self) -> FakeTelegram:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def url(self) -> str:
        """Server root."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Bot API base URL for PTB (`Bot(token, base_url=...)`, `ApplicationBuilder().base_url(...)`)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """File base URL, for PTB's `base_file_url` (no file downloads are served)."""
        return f"{self.url}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        """The bot as a Telegram User object."""
        return {"id": self.bot_id, "is_bot": True, "first_name": self.bot_first_name, "username": self.bot_username}

    # -- the test side: users do things ------------------------------------------------------------

    def user_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        chat_type: str = "private",
        first_name: str = "User",
        reply_to_message_id: int | None = None,
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """A user writes `text` in a chat; returns the Message update queued (or delivered to the webhook)."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        with self._lock:
            chat = self._remember_chat(chat_id, chat_type, first_name)
            mid = self._take_message_id(chat_id, message_id)
            message: dict[str, Any] = {
                "message_id": mid,
                "from": user,
                "chat": chat,
                "date": int(time.time()),
                "text": text,
            }
            entities = self._user_entities(text)
            if entities:
                message["entities"] = entities
            if reply_to_message_id is not None:
                replied = self._messages.get((chat_id, reply_to_message_id))
                if replied is None:
                    raise ValueError(f"chat {chat_id} has no message {reply_to_message_id} to reply to")
                message["reply_to_message"] = _without_reply(replied)
            self._messages[(chat_id, mid)] = message
        return self.push_update({"message": copy.deepcopy(message)})

    def press_button(
        self,
        chat_id: int,
        user_id: int,
        message_id: int,
        data: str,
        *,
        chat_type: str = "private",
        strict: bool = False,
    ) -> dict[str, Any]:
        """A user presses an inline button of a bot message; returns the callback_query update.

        The message must exist. With `strict` it must also not be deleted and must currently carry a button with
        that callback data; without it, stale presses (a keyboard already edited away) are allowed, as real clients
        can send them.
        """
        with self._lock:
            message = self._messages.get((chat_id, message_id))
            if message is None:
                raise ValueError(f"chat {chat_id} has no message {message_id} with buttons to press")
            if strict and (chat_id, message_id) in self._deleted_keys:
                raise ValueError(f"message {message_id} in chat {chat_id} was deleted; its buttons are gone")
            if strict and data not in _callback_datas(message.get("reply_markup")):
                raise ValueError(
                    f"message {message_id} in chat {chat_id} has no button with callback data {data!r} "
                    f"(it has {sorted(_callback_datas(message.get('reply_markup')))})"
                )
            query_id = str(4_000_000_000_000 + next(self._callback_ids))
            self._open_callbacks.add(query_id)
            chat = self._chats.get(chat_id) or self._remember_chat(chat_id, chat_type, "User")
            query = {
                "id": query_id,
                "from": {"id": user_id, "is_bot": False, "first_name": "User", "language_code": "en"},
                "message": copy.deepcopy(message),
                "chat_instance": str(abs(chat["id"]) * 7919 % 10**12),
                "data": data,
            }
        return self.push_update({"callback_query": query})

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an Update for getUpdates, or POST it to the webhook when one is set; assigns update_id if missing."""
        with self._lock:
            if "update_id" not in update:
                update["update_id"] = self._next_update_id
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
            stored = copy.deepcopy(update)
            webhook = self.webhook is not None
            if not webhook:
                self._updates.append(stored)
        if webhook:
            self._schedule_delivery(stored)
        else:
            self._wake_pollers()
        return update

    # -- what the bot did --------------------------------------------------------------------------

    def sent(self, chat_id: int | None = None) -> list[SentMessage]:
        """Snapshots of the messages the bot sent, in order (deleted ones included, marked), optionally one chat's."""
        with self._lock:
            return [_snapshot(m) for m in self._sent if chat_id is None or m.chat_id == chat_id]

    def cpu_s(self) -> float:
        """CPU seconds the fake's server thread used so far (benchmarks subtract it from the process's)."""
        thread = self._thread
        if thread is None or thread.ident is None:
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))

    def sent_count(self, chat_id: int | None = None) -> int:
        """How many messages the bot sent, overall or to one chat (constant time: no snapshots)."""
        with self._lock:
            return len(self._sent) if chat_id is None else self._sent_per_chat.get(chat_id, 0)

    def message(self, chat_id: int, message_id: int) -> SentMessage | None:
        """Snapshot of one message the bot sent, or None."""
        with self._lock:
            found = self._sent_by_key.get((chat_id, message_id))
            return _snapshot(found) if found is not None else None

    def callback_answers(self) -> list[dict[str, Any]]:
        """Parameters of the successful answerCallbackQuery calls, in order."""
        with self._lock:
            return [dict(a) for a in self._callback_answers]

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued for getUpdates and not yet confirmed by an offset."""
        with self._lock:
            return copy.deepcopy(self._updates)

    def max_rate(self, window: float = 1.0, chat_id: int | None = None) -> int:
        """The most messages the bot sent (successfully) within any `window` seconds, overall or to one chat."""
        times = sorted(m.at for m in self.sent(chat_id))
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        recheck_s: float | None = 0.01,
        chat_id: int | None = None,
    ) -> None:
        """Wait until `predicate` holds, looking again whenever the fake answers a call (with `chat_id`, a call
        about that chat only) or delivers a webhook update, and every `recheck_s` for predicates on state outside
        the fake (None: on the fake's events only). AssertionError describing the bot's activity on timeout."""
        deadline = time.monotonic() + timeout
        changed = asyncio.Event()
        waiter = (asyncio.get_running_loop(), changed, chat_id)
        with self._lock:
            self._waiters.append(waiter)
        try:
            while True:
                changed.clear()  # before the look: a change right after it sets the event again
                if predicate():
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{_describe(predicate)} not met within {timeout} s; {self._activity()}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), left if recheck_s is None else min(left, recheck_s))
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    def _notify(self, chat_id: Any = None) -> None:
        with self._lock:
            waiters = [(loop, changed) for loop, changed, chat in self._waiters if chat is None or chat == chat_id]
        for loop, changed in waiters:
            with contextlib.suppress(RuntimeError):  # that loop closed
                loop.call_soon_threadsafe(changed.set)

    def _activity(self) -> str:
        calls = [f"{c.method}→{c.status or 'waiting'}" for c in list(self.calls)[-12:]]
        texts = [f"{m.chat_id}/{m.message_id}: {(m.text or m.caption or '<photo>')[:60]!r}" for m in self.sent()[-5:]]
        return f"last API calls: {calls}; last sent messages: {texts}"

    # -- faults ------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = 1,
        description: str | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next `count` calls of `method` with an error (by default 429 with parameters.retry_after)."""
        if description is None:
            if status == 429:
                description = "Too Many Requests" + (f": retry after {retry_after}" if retry_after is not None else "")
            else:
                description = _DEFAULT_DESCRIPTIONS.get(status, f"Error: fake failure {status}")
        with self._lock:
            self._faults.append(
                _Fault(method.lower(), status, description, retry_after if status == 429 else None, count)
            )

    def block_chat(self, chat_id: int) -> None:
        """Every later send, edit, delete or chat action to that chat answers 403 Forbidden."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """Undo block_chat."""
        with self._lock:
            self._blocked.discard(chat_id)

    # -- state helpers (call with the lock held) ---------------------------------------------------

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

    def _user_entities(self, text: str) -> list[dict[str, Any]]:
        entities: list[dict[str, Any]] = []
        command_end = 0
        if (m := _BOT_COMMAND_RE.match(text)) is not None:
            entities.append({"type": "bot_command", "offset": 0, "length": _u16(m.group(0))})
            command_end = m.end()
        mention = "@" + self.bot_username
        for m in re.finditer(re.escape(mention) + r"(?![A-Za-z0-9_])", text, flags=re.IGNORECASE):
            if m.start() >= command_end:
                entities.append({"type": "mention", "offset": _u16(text[: m.start()]), "length": _u16(mention)})
        return entities

    def _wake_pollers(self) -> None:
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None:
            with contextlib.suppress(RuntimeError):  # the server loop closed meanwhile
                loop.call_soon_threadsafe(changed.set)

    def _schedule_delivery(self, update: dict[str, Any]) -> None:
        loop, queue = self._loop, self._delivery_queue
        if loop is None or queue is None:
            raise RuntimeError("a webhook is set but the fake Telegram server is not running")
        loop.call_soon_threadsafe(queue.put_nowait, update)

    async def _deliver_webhooks(self, client: httpx.AsyncClient) -> None:
        assert self._delivery_queue is not None
        while True:
            update = await self._delivery_queue.get()
            with self._lock:
                hook = dict(self.webhook) if self.webhook is not None else None
                allowed = self._allowed_updates
            if hook is None or not _allowed(update, allowed):
                continue
            headers = {"Content-Type": "application/json"}
            if hook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            try:
                response = await client.post(hook["url"], content=json.dumps(update).encode(), headers=headers)
                status, error = response.status_code, f"Wrong response from the webhook: {response.status_code}"
            except httpx.HTTPError as exc:
                status, error = 0, f"Connection failed: {type(exc).__name__}"
            with self._lock:
                self.webhook_deliveries.append(status)
                if not 200 <= status < 300:
                    self._webhook_error = (int(time.time()), error)
            self._notify()

    # -- HTTP --------------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    async def _handle(self, request: Request) -> Response:
        at = time.monotonic()
        match = _PATH_RE.match(request.url.path)
        if match is None:
            return _error_response(_ApiError(404, "Not Found"))
        token, method = match.groups()
        try:
            params, files = await _decode(request)
        except _ApiError as exc:
            params, files = {}, {}
            call = ApiCall(method, params, at)
            self.calls.append(call)
            return self._answer(call, exc)
        call = ApiCall(method, params, at)
        self.calls.append(call)
        if token != self.token:
            return self._answer(call, _ApiError(401, "Unauthorized"))
        fault = self._take_fault(method)
        if fault is not None:
            return self._answer(call, fault)
        handler = self._methods.get(method.lower())
        if handler is None:
            return self._answer(call, _ApiError(404, "Not Found"))
        try:
            if method.lower() == "getupdates":
                result: Any = await self._get_updates(params)
            else:
                result = handler(params, files, at)
        except _ApiError as exc:
            return self._answer(call, exc)
        return self._answer(call, result)

    def _answer(self, call: ApiCall, outcome: Any) -> Response:
        if isinstance(outcome, _ApiError):
            call.status = outcome.status
            response = _error_response(outcome)
        else:
            call.status = 200
            response = JSONResponse({"ok": True, "result": outcome})
        self._notify(call.params.get("chat_id"))
        return response

    def _take_fault(self, method: str) -> _ApiError | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method.lower() and fault.left > 0:
                    fault.left -= 1
                    if fault.left == 0:
                        self._faults.remove(fault)
                    return _ApiError(fault.status, fault.description, fault.retry_after)
        return None

    def _method_table(self) -> dict[str, Callable[..., Any]]:
        ok = self._ok
        return {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "sendchataction": self._send_chat_action,
            "getchatmember": self._get_chat_member,
            "setmydescription": ok,
            "setmyshortdescription": ok,
            "setmyname": ok,
            "setchatmenubutton": ok,
        }

    # -- methods -----------------------------------------------------------------------------------

    def _ok(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        return True

    def _get_me(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        limit = min(max(_int(params.get("limit", 100), "limit"), 1), 100)
        timeout = max(_number(params.get("timeout", 0), "timeout"), 0.0)
        offset = params.get("offset")
        allowed = params.get("allowed_updates")
        with self._lock:
            if self.webhook is not None:
                raise _ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if allowed is not None:
                self._allowed_updates = list(allowed) or None
            if offset is not None:
                self._confirm(_int(offset, "offset"))
            self._poll_generation += 1
            generation = self._poll_generation
        assert self._changed is not None
        self._changed.set()  # an older poll still waiting is terminated by this one
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            with self._lock:
                if self._stopping:
                    return []
                if generation != self._poll_generation:
                    raise _ApiError(409, _DEFAULT_DESCRIPTIONS[409])
                if self.webhook is not None:
                    raise _ApiError(409, "Conflict: terminated by setWebhook request")
                self._updates = [u for u in self._updates if _allowed(u, self._allowed_updates)]
                ready = copy.deepcopy(self._updates[:limit])
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                return ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._updates = self._updates[offset:]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    def _set_webhook(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(params, files, at)
        if not url.startswith(("http://", "https://")):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise _bad("secret token contains unallowed characters")
        with self._lock:
            self.webhook = {"url": url, "secret_token": secret}
            self._webhook_max_connections = _int(params.get("max_connections") or 40, "max_connections")
            if params.get("allowed_updates") is not None:
                self._allowed_updates = list(params["allowed_updates"]) or None
            pending = [] if params.get("drop_pending_updates") else self._updates
            self._updates = []
            self._webhook_error = None
        assert self._changed is not None
        self._changed.set()  # long polls in progress end with 409
        for update in pending:
            self._schedule_delivery(update)
        return True

    def _delete_webhook(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        with self._lock:
            self.webhook = None
            self._webhook_error = None
            if params.get("drop_pending_updates"):
                self._updates = []
        return True

    def _get_webhook_info(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {
                "url": self.webhook["url"] if self.webhook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self.webhook:
                info["max_connections"] = self._webhook_max_connections
                info["ip_address"] = "127.0.0.1"
                if self._allowed_updates:
                    info["allowed_updates"] = list(self._allowed_updates)
                if self._webhook_error:
                    info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info

    def _send_message(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        text = params.get("text")
        text = "" if text is None else str(text)
        parse_mode = _parse_mode(params.get("parse_mode"))
        plain, entities = _render(text, parse_mode, params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup = _check_markup(params.get("reply_markup"))
        with self._lock:
            reply_to = self._reply_target(chat_id, params)
            mid = self._take_message_id(chat_id)
            message = self._bot_message(chat_id, mid, reply_to, markup)
            message["text"] = plain
            if entities:
                message["entities"] = entities
            record = SentMessage(
                chat_id=chat_id,
                message_id=mid,
                text=text,
                caption=None,
                photo_size=None,
                reply_markup=markup,
                parse_mode=parse_mode,
                edits=[],
                deleted=False,
                at=at,
                plain=plain,
                reply_to_message_id=reply_to["message_id"] if reply_to else None,
            )
            self._store(message, record)
            return copy.deepcopy(message)

    def _send_photo(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        size, width, height, data = self._photo(params, files)
        caption = params.get("caption")
        caption = None if caption is None else str(caption)
        parse_mode = _parse_mode(params.get("parse_mode"))
        plain, entities = _render(caption or "", parse_mode, params.get("caption_entities"))
        if len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        markup = _check_markup(params.get("reply_markup"))
        with self._lock:
            reply_to = self._reply_target(chat_id, params)
            mid = self._take_message_id(chat_id)
            message = self._bot_message(chat_id, mid, reply_to, markup)
            file_id = f"AgACAgFAKE{next(self._file_ids):06d}"
            self._files[file_id] = (size or 0, width, height)
            thumb_w, thumb_h = _thumb(width, height)
            message["photo"] = [
                {
                    "file_id": file_id + "_t",
                    "file_unique_id": f"t{file_id[-6:]}",
                    "width": thumb_w,
                    "height": thumb_h,
                    "file_size": max(1, (size or 0) // 20),
                },
                {
                    "file_id": file_id,
                    "file_unique_id": f"u{file_id[-6:]}",
                    "width": width,
                    "height": height,
                    "file_size": size or 0,
                },
            ]
            if plain:
                message["caption"] = plain
                if entities:
                    message["caption_entities"] = entities
            record = SentMessage(
                chat_id=chat_id,
                message_id=mid,
                text=None,
                caption=caption,
                photo_size=size,
                reply_markup=markup,
                parse_mode=parse_mode,
                edits=[],
                deleted=False,
                at=at,
                plain=plain if caption is not None else None,
                reply_to_message_id=reply_to["message_id"] if reply_to else None,
                photo_bytes=data,
            )
            self._store(message, record)
            return copy.deepcopy(message)

    def _photo(self, params: dict[str, Any], files: dict[str, _Upload]) -> tuple[int | None, int, int, bytes | None]:
        photo = params.get("photo")
        upload = files.get("photo")
        if isinstance(photo, str) and photo.startswith("attach://"):
            upload = files.get(photo.removeprefix("attach://"))
        if upload is not None:
            data = upload.data
            if not data:
                raise _bad("file must be non-empty")
            dims = _image_size(data)
            if dims is None:
                if self.validate_photos:
                    raise _bad("IMAGE_PROCESS_FAILED")
                dims = (512, 512)
            return len(data), dims[0], dims[1], data
        if isinstance(photo, str) and photo:
            if photo.startswith(("http://", "https://")):
                return None, 800, 600, None
            with self._lock:
                known = self._files.get(photo)
            if known is None:
                raise _bad("wrong file identifier/HTTP URL specified")
            return known[0], known[1], known[2], None
        raise _bad("there is no photo in the request")

    def _edit_message_text(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> dict[str, Any]:
        chat_id, mid = self._edit_target(params)
        text = params.get("text")
        text = "" if text is None else str(text)
        parse_mode = _parse_mode(params.get("parse_mode"))
        plain, entities = _render(text, parse_mode, params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        with self._lock:
            message, record = self._editable(chat_id, mid)
            if "text" not in message:
                raise _bad("there is no text in the message to edit")
            if (
                message["text"] == plain
                and message.get("entities", []) == entities
                and message.get("reply_markup") == markup
            ):
                raise _bad(_NOT_MODIFIED.removeprefix("Bad Request: "))
            message["text"] = plain
            _set_or_drop(message, "entities", entities or None)
            _set_or_drop(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            record.text, record.plain, record.parse_mode, record.reply_markup = text, plain, parse_mode, markup
            record.edits.append(text)
            return copy.deepcopy(message)

    def _edit_message_caption(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> dict[str, Any]:
        chat_id, mid = self._edit_target(params)
        caption = params.get("caption")
        caption_text = "" if caption is None else str(caption)
        parse_mode = _parse_mode(params.get("parse_mode"))
        plain, entities = _render(caption_text, parse_mode, params.get("caption_entities"))
        if len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        with self._lock:
            message, record = self._editable(chat_id, mid)
            if "text" in message:
                raise _bad("there is no caption in the message to edit")
            if (
                message.get("caption", "") == plain
                and message.get("caption_entities", []) == entities
                and message.get("reply_markup") == markup
            ):
                raise _bad(_NOT_MODIFIED.removeprefix("Bad Request: "))
            _set_or_drop(message, "caption", plain or None)
            _set_or_drop(message, "caption_entities", entities or None)
            _set_or_drop(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            record.caption, record.plain, record.parse_mode, record.reply_markup = caption, plain, parse_mode, markup
            record.edits.append(caption_text)
            return copy.deepcopy(message)

    def _edit_message_reply_markup(
        self, params: dict[str, Any], files: dict[str, _Upload], at: float
    ) -> dict[str, Any]:
        chat_id, mid = self._edit_target(params)
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        with self._lock:
            message, record = self._editable(chat_id, mid)
            if message.get("reply_markup") == markup:
                raise _bad(_NOT_MODIFIED.removeprefix("Bad Request: "))
            _set_or_drop(message, "reply_markup", markup)
            message["edit_date"] = int(time.time())
            record.reply_markup = markup
            return copy.deepcopy(message)

    def _delete_message(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        chat_id = self._target_chat(params)
        mid = _int(params.get("message_id"), "message_id")
        with self._lock:
            key = (chat_id, mid)
            if key not in self._messages or key in self._deleted_keys:
                raise _bad("message to delete not found")
            self._deleted_keys.add(key)
            self.deleted.append(key)
            record = self._sent_by_key.get(key)
            if record is not None:
                record.deleted = True
        return True

    def _answer_callback_query(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        with self._lock:
            if query_id not in self._open_callbacks:
                raise _bad("query is too old and response timeout expired or query ID is invalid")
            self._open_callbacks.discard(query_id)
            self._callback_answers.append(dict(params))
        return True

    def _set_my_commands(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands")
        clean: list[dict[str, Any]] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.match(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": description})
        with self._lock:
            self.commands = clean
            self.commands_by_scope[_scope_key(params)] = clean
        return True

    def _get_my_commands(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.commands_by_scope.get(_scope_key(params), []))

    def _delete_my_commands(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        with self._lock:
            self.commands_by_scope.pop(_scope_key(params), None)
        return True

    def _get_chat_member(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> dict[str, Any]:
        chat_id = self._target_chat(params)
        user_id = _int(params.get("user_id"), "user_id")
        user = {"id": user_id, "is_bot": False, "first_name": f"User {user_id}"}
        with self._lock:
            owner = user_id in self.chat_admins.get(chat_id, set())
        # Admins are reported as the chat's owners ("creator"): the one status without a dozen permission flags.
        if owner:
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    def _send_chat_action(self, params: dict[str, Any], files: dict[str, _Upload], at: float) -> bool:
        chat_id = self._target_chat(params)
        action = str(params.get("action") or "")
        if action not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        with self._lock:
            self.chat_actions.append((chat_id, action))
        return True

    # -- method helpers ----------------------------------------------------------------------------

    def _target_chat(self, params: dict[str, Any]) -> int:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _bad("chat_id is empty")
        if isinstance(raw, bool) or not isinstance(raw, int) or raw == 0:
            raise _bad("chat not found")
        with self._lock:
            if raw in self._blocked:
                who = "bot was blocked by the user" if raw > 0 else "bot was kicked from the group chat"
                raise _ApiError(403, f"Forbidden: {who}")
        return raw

    def _edit_target(self, params: dict[str, Any]) -> tuple[int, int]:
        if params.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        if params.get("chat_id") is None or params.get("message_id") is None:
            raise _bad("message identifier is not specified")
        return self._target_chat(params), _int(params["message_id"], "message_id")

    def _editable(self, chat_id: int, mid: int) -> tuple[dict[str, Any], SentMessage]:
        key = (chat_id, mid)
        message = self._messages.get(key)
        if message is None or key in self._deleted_keys:
            raise _bad("message to edit not found")
        record = self._sent_by_key.get(key)
        if record is None:
            raise _bad("message can't be edited")
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
        key = (_int(reply_chat, "chat_id"), _int(wanted, "message_id"))
        found = self._messages.get(key)
        if found is None or key in self._deleted_keys:
            if lenient:
                return None
            raise _bad("message to be replied not found")
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
            message["reply_to_message"] = _without_reply(reply_to)
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        return message

    def _store(self, message: dict[str, Any], record: SentMessage) -> None:
        key = (record.chat_id, record.message_id)
        self._messages[key] = message
        self._sent.append(record)
        self._sent_per_chat[record.chat_id] = self._sent_per_chat.get(record.chat_id, 0) + 1
        self._sent_by_key[key] = record


# -- request decoding --------------------------------------------------------------------------------


async def _decode(request: Request) -> tuple[dict[str, Any], dict[str, _Upload]]:
    raw: dict[str, Any] = dict(request.query_params)
    files: dict[str, _Upload] = {}
    body = await request.body()
    ctype = request.headers.get("content-type", "")
    kind = ctype.split(";", 1)[0].strip().lower()
    if body:
        if kind == "application/json":
            try:
                data = json.loads(body)
            except json.JSONDecodeError as exc:
                raise _bad("can't parse JSON encoded request") from exc
            if not isinstance(data, dict):
                raise _bad("request body must be a JSON object")
            raw.update(data)
        elif kind == "multipart/form-data":
            fields, files = _parse_multipart(body, ctype)
            raw.update(fields)
        else:
            raw.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    params = {name: _coerce(name, value) for name, value in raw.items()}
    for name, upload in files.items():
        params.setdefault(name, {"file_name": upload.filename, "size": len(upload.data)})
    return params, files


def _coerce(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            what = "reply keyboard markup" if name == "reply_markup" else name
            raise _bad(f"can't parse {what} JSON object") from exc
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in _NUMBER_FIELDS:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    if name in _BOOL_FIELDS:
        return value.strip().lower() in {"true", "1"}
    return value


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, _Upload]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise _bad("multipart request without boundary")
    delimiter = b"\r\n--" + match.group(1).encode()
    fields: dict[str, str] = {}
    files: dict[str, _Upload] = {}
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = head.decode("utf-8", "replace")
        disposition = next((h for h in headers.split("\r\n") if h.lower().startswith("content-disposition")), "")
        name_m = re.search(r'(?<![a-z])name="([^"]*)"', disposition, flags=re.IGNORECASE)
        file_m = re.search(r'filename="([^"]*)"', disposition, flags=re.IGNORECASE)
        if name_m is None:
            continue
        if file_m is not None:
            files[name_m.group(1)] = _Upload(name_m.group(1), file_m.group(1), content)
        else:
            fields[name_m.group(1)] = content.decode("utf-8", "replace")
    return fields, files


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise _bad(f"wrong parameter {name} in request")
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError as exc:
        raise _bad(f"wrong parameter {name} in request") from exc


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise _bad(f"wrong parameter {name} in request")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise _bad(f"wrong parameter {name} in request") from exc


def _error_response(error: _ApiError) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": error.status, "description": error.description}
    if error.retry_after is not None:
        body["parameters"] = {"retry_after": error.retry_after}
    return JSONResponse(body, status_code=error.status)


# -- markup and keyboards ----------------------------------------------------------------------------


def _check_markup(markup: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:
            raise _bad("inline keyboard expected")
        return markup
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or any(not isinstance(row, list) for row in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise _bad("reply markup is too long")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            if not button["text"]:
                raise _bad("can't parse inline keyboard button: Text must be non-empty")
            if not _BUTTON_ACTIONS & button.keys():
                raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if "callback_data" in button and (
                not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA
            ):
                raise _bad("BUTTON_DATA_INVALID")
            url = button.get("url")
            if "url" in button and (not isinstance(url, str) or not url.startswith(("http://", "https://", "tg://"))):
                raise _bad("BUTTON_URL_INVALID")
    return markup


def _callback_datas(markup: Any) -> set[str]:
    if not isinstance(markup, dict):
        return set()
    return {
        b["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for b in row
        if isinstance(b, dict) and "callback_data" in b
    }


# -- formatted text ----------------------------------------------------------------------------------


def _u16(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _parse_mode(value: Any) -> str | None:
    if value is None or value == "":
        return None
    mode = str(value)
    if mode.lower() not in {"html", "markdownv2", "markdown"}:
        raise _bad(f"unsupported parse_mode {mode!r}")
    return mode


def _render(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """Plain text and entities as Telegram would store them."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    return text, list(entities) if isinstance(entities, list) else []


class _Builder:
    """Collects plain text and entities with UTF-16 offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0
        self.entities: list[dict[str, Any]] = []

    def emit(self, s: str) -> None:
        self.parts.append(s)
        self.pos += _u16(s)

    def close(self, kind: str, start: int, extra: dict[str, Any] | None = None) -> None:
        if self.pos > start:
            self.entities.append({"type": kind, "offset": start, "length": self.pos - start, **(extra or {})})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), self.entities


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}
_HTML_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,8}));")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME_RE = re.compile(r"[A-Za-z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def _entity_error(message: str) -> _ApiError:
    return _bad(f"can't parse entities: {message}")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _html_unescape(value: str) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return _HTML_NAMED[m.group(1)]
        code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else m.group(0)

    return _HTML_ENTITY_RE.sub(one, value)


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    stack: list[tuple[str, int, dict[str, Any]]] = []  # (tag, start, entity extras)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "&":
            m = _HTML_ENTITY_RE.match(text, i)
            decoded = _html_unescape(m.group(0)) if m else None
            if m is None or decoded == m.group(0):
                raise _entity_error(f'unescaped "&" at byte offset {_byte_offset(text, i)}; write it as "&amp;"')
            assert decoded is not None
            out.emit(decoded)
            i = m.end()
            continue
        if c != "<":
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            out.emit(text[i:j])
            i = j
            continue
        offset = _byte_offset(text, i)
        if text.startswith("</", i):
            end = text.find(">", i)
            if end == -1:
                raise _entity_error(f"Unclosed end tag at byte offset {offset}")
            name = text[i + 2 : end].strip().lower()
            if not stack:
                raise _entity_error(f"Unexpected end tag at byte offset {offset}")
            tag, start, closed = stack.pop()
            if name != tag:
                raise _entity_error(
                    f'Unmatched end tag at byte offset {offset}, expected "</{tag}>", found "</{name}>"'
                )
            kind = _HTML_TAGS[tag]
            if tag == "a" and not closed.get("url"):
                kind = ""
            if kind:
                out.close(kind, start, closed)
            i = end + 1
            continue
        name_m = _TAG_NAME_RE.match(text, i + 1)
        assert name_m is not None
        name = name_m.group(0).lower()
        if name not in _HTML_TAGS:
            raise _entity_error(f'Unsupported start tag "{name}" at byte offset {offset}')
        attrs, i = _html_attributes(text, name_m.end(), name, offset)
        extra: dict[str, Any] = {}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _entity_error(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
        if name == "a":
            extra["url"] = attrs.get("href", "")
        if name == "code" and stack and stack[-1][0] == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-"):
                stack[-1][2]["language"] = language.removeprefix("language-")
        stack.append((name, out.pos, extra))
    if stack:
        raise _entity_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _html_attributes(text: str, i: int, tag: str, offset: int) -> tuple[dict[str, str], int]:
    """Parse the attributes of a start tag from just after its name; returns them and the index after '>'."""
    attrs: dict[str, str] = {}
    n = len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            raise _entity_error(f"Unclosed start tag at byte offset {offset}")
        if text[i] == ">":
            return attrs, i + 1
        name_m = _ATTR_NAME_RE.match(text, i)
        if name_m is None:
            raise _entity_error(f'Empty attribute name in the tag "{tag}" at byte offset {offset}')
        attr = name_m.group(0).lower()
        i = name_m.end()
        while i < n and text[i].isspace():
            i += 1
        value = ""
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i].isspace():
                i += 1
            if i >= n:
                raise _entity_error(f"Unclosed start tag at byte offset {offset}")
            if text[i] in "'\"":
                end = text.find(text[i], i + 1)
                if end == -1:
                    raise _entity_error(f"Unclosed start tag at byte offset {offset}")
                value, i = text[i + 1 : end], end + 1
            else:
                start = i
                while i < n and not text[i].isspace() and text[i] != ">":
                    i += 1
                value = text[start:i]
            value = _html_unescape(value)
        attrs[attr] = value


_MD_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Best-effort MarkdownV2: Telegram's reserved-character and unclosed-entity errors, and the plain text."""
    out = _Builder()
    stack: list[tuple[str, int, int, dict[str, Any]]] = []  # (kind, start, byte offset of the marker, extras)
    quote_start: int | None = None
    i, n = 0, len(text)

    def toggle(kind: str) -> None:
        if stack and stack[-1][0] == kind:
            closed = stack.pop()
            out.close(kind, closed[1], closed[3])
        else:
            stack.append((kind, out.pos, _byte_offset(text, i), {}))

    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            out.emit(text[i + 1])
            i += 2
            continue
        top = stack[-1][0] if stack else None
        if top in ("code", "pre"):
            if top == "pre" and text.startswith("```", i):
                closed = stack.pop()
                out.close("pre", closed[1], closed[3])
                i += 3
            elif top == "code" and c == "`":
                closed = stack.pop()
                out.close("code", closed[1], closed[3])
                i += 1
            else:
                out.emit(c)
                i += 1
            continue
        if c == "\n":
            if quote_start is not None and not text.startswith(">", i + 1):
                out.close("blockquote", quote_start)
                quote_start = None
            out.emit(c)
            i += 1
            continue
        if c not in _MD_RESERVED:
            out.emit(c)
            i += 1
            continue
        if c == ">" and (i == 0 or text[i - 1] == "\n"):
            if quote_start is None:
                quote_start = out.pos
            i += 1
            continue
        if c == "`":
            if text.startswith("```", i):
                pre: dict[str, Any] = {}
                j = i + 3
                newline = text.find("\n", j)
                if newline != -1 and text[j:newline] and not any(ch.isspace() for ch in text[j:newline]):
                    pre["language"] = text[j:newline]
                    j = newline + 1
                stack.append(("pre", out.pos, _byte_offset(text, i), pre))
                i = j
            else:
                stack.append(("code", out.pos, _byte_offset(text, i), {}))
                i += 1
            continue
        if c == "*":
            toggle("bold")
            i += 1
        elif c == "~":
            toggle("strikethrough")
            i += 1
        elif c == "_":
            if top == "italic" or not text.startswith("__", i):
                toggle("italic")
                i += 1
            else:
                toggle("underline")
                i += 2
        elif c == "|" and text.startswith("||", i):
            toggle("spoiler")
            i += 2
        elif c == "[":
            stack.append(("text_link", out.pos, _byte_offset(text, i), {}))
            i += 1
        elif c == "]" and top == "text_link":
            closed = stack.pop()
            i += 1
            if i < n and text[i] == "(":
                url, i = _markdown_url(text, i + 1)
                if url:
                    out.close("text_link", closed[1], {"url": url})
        else:
            raise _entity_error(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
    if stack:
        kind, _, offset, _ = stack[-1]
        raise _entity_error(f"Can't find end of {_MD_NAMES[kind]} entity at byte offset {offset}")
    if quote_start is not None:
        out.close("blockquote", quote_start)
    return out.result()


def _markdown_url(text: str, i: int) -> tuple[str, int]:
    start, url = i, []
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            url.append(text[i + 1])
            i += 2
            continue
        if text[i] == ")":
            return "".join(url), i + 1
        url.append(text[i])
        i += 1
    raise _entity_error(f"Can't find end of a URL at byte offset {_byte_offset(text, start)}")


# -- small helpers -----------------------------------------------------------------------------------


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG, GIF, WebP or BMP image, or None when it is none of these."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"GIF8") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(int(width)), abs(int(height))
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return 512, 512
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (length,) = struct.unpack(">H", data[i + 2 : i + 4])
            i += 2 + int(length)
        return 800, 600
    return None


def _thumb(width: int, height: int) -> tuple[int, int]:
    scale = 90 / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _without_reply(message: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


def _set_or_drop(message: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        message.pop(key, None)
    else:
        message[key] = value


def _snapshot(record: SentMessage) -> SentMessage:
    return replace(record, edits=list(record.edits), reply_markup=copy.deepcopy(record.reply_markup))


def _update_type(update: dict[str, Any]) -> str:
    return next((k for k in update if k != "update_id"), "")


def _allowed(update: dict[str, Any], allowed: list[str] | None) -> bool:
    kind = _update_type(update)
    if allowed is None:
        return kind not in _UPDATE_TYPES_OFF_BY_DEFAULT
    return kind in allowed


def _scope_key(params: dict[str, Any]) -> str:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True) + "|" + str(params.get("language_code") or "")


def _describe(predicate: Callable[[], bool]) -> str:
    code = getattr(predicate, "__code__", None)
    name = getattr(predicate, "__qualname__", repr(predicate))
    if code is not None:
        return f"condition {name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
    return f"condition {name}"
