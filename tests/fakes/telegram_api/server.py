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
import re
import socket
import time
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from tests.fakes.telegram_api.activity import BotActivity
from tests.fakes.telegram_api.bot_methods import BotMethods
from tests.fakes.telegram_api.faults import Faults
from tests.fakes.telegram_api.messages import MessageMethods
from tests.fakes.telegram_api.protocol import ApiCall, ApiError, Handler
from tests.fakes.telegram_api.users import UserActions
from tests.fakes.telegram_api.webhook import WEBHOOK_TIMEOUT_S
from tests.fakes.telegram_api.wire import decode_request, error_response
from tests.fakes.threaded import QuickExitServer, serve_in_thread

_PATH_RE = re.compile(r"^/bot([^/]+)/([A-Za-z0-9_]+)/?$")


class FakeTelegram(UserActions, BotActivity, Faults, MessageMethods, BotMethods):
    """Telegram Bot API server on 127.0.0.1 (free port) in a background thread; use as an async context manager."""

    def __init__(self, token: str = "123456:TEST", bot_username: str = "bastion_test_bot") -> None:
        super().__init__(token, bot_username)
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

    # -- HTTP --------------------------------------------------------------------------------------

    def _app(self) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:  # a function: uvicorn sees ASGI 3
            await self._asgi(scope, receive, send)

        return app

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every path, GET, HEAD and POST (as the Starlette route allowed), straight to `_handle`. A one-route
        Starlette app did the same behind its middleware and router, a quarter of the fake's CPU per call: in a
        benchmark the fake shares the cores with the bot it measures, so what the fake spends is the bot's loss."""
        if scope["type"] != "http":
            return  # lifespan is off; nothing else reaches an HTTP server
        if scope["method"] not in ("GET", "HEAD", "POST"):
            response: Response = PlainTextResponse("Method Not Allowed", 405, headers={"Allow": "GET, HEAD, POST"})
        else:
            response = await self._handle(Request(scope, receive))
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        at = time.monotonic()
        match = _PATH_RE.match(request.url.path)
        if match is None:
            return error_response(ApiError(404, "Not Found"))
        token, method = match.groups()
        try:
            params, files = await decode_request(request)
        except ApiError as exc:
            params, files = {}, {}
            call = ApiCall(method, params, at)
            self.calls.append(call)
            return self._answer(call, exc)
        call = ApiCall(method, params, at)
        self.calls.append(call)
        if token != self.token:
            return self._answer(call, ApiError(401, "Unauthorized"))
        fault = self._take_fault(method)
        if fault is not None:
            return self._answer(call, fault)
        handler = self._methods.get(method.lower())
        if handler is None:
            return self._answer(call, ApiError(404, "Not Found"))
        try:
            if method.lower() == "getupdates":
                result: Any = await self._get_updates(params)
            else:
                result = handler(params, files, at)
        except ApiError as exc:
            return self._answer(call, exc)
        return self._answer(call, result)

    def _answer(self, call: ApiCall, outcome: Any) -> Response:
        if isinstance(outcome, ApiError):
            call.status = outcome.status
            response = error_response(outcome)
        else:
            call.status = 200
            response = JSONResponse({"ok": True, "result": outcome})
        self._notify(call.params.get("chat_id"))
        return response

    def _method_table(self) -> dict[str, Handler]:
        # Lower-case method name -> handler: Telegram matches method names case-insensitively.
        return {**self._update_methods(), **self._webhook_methods(), **self._message_methods(), **self._bot_methods()}
