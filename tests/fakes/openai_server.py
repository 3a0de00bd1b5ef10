"""A real HTTP server speaking enough of the OpenAI protocol (and vLLM's /health) for the openai SDK and
langchain-openai, answering from a script and recording every request.

    async with FakeOpenAIServer(models=["bastion"]) as server:
        server.script(Reply.tool_call("get_price", {"symbol": "BTC"}), Reply.text("BTC is at 64,000."))
        settings = ModelSettings(base_url=server.base_url)
        ...
        assert server.chat_bodies[0]["temperature"] == 0.6
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.replies import Reply, Responder, completion_body, content_chunks, stream_events
from tests.fakes.threaded import QuickExitServer, serve_in_thread

__all__ = ["FakeOpenAIServer", "RecordedRequest", "Reply", "Responder"]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _DroppedConnection(Exception):
    """Raised after the response started, so uvicorn closes the socket mid-answer (a scripted drop)."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DroppedConnection)


class _DropResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-', "more_body": True})
        raise _DroppedConnection


class FakeOpenAIServer:
    """OpenAI-protocol server on 127.0.0.1 (free port) in a background thread; use as a (async) context manager."""

    def __init__(
        self,
        *,
        models: Sequence[str] = ("bastion",),
        api_key: str | None = None,
        default: Responder | None = None,
        health_status: int = 200,
        check_model: bool = True,
    ) -> None:
        self.models = list(models)
        self.api_key = api_key  # when set, /v1/* needs "Authorization: Bearer <key>" like vLLM --api-key
        self.default = default  # answer when the script is empty; None answers HTTP 500 naming the problem
        self.health_status = health_status
        self.check_model = check_model  # 404 for a model not in `models`, as vLLM does
        self._script: deque[Responder] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._server: QuickExitServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind a free port and serve in a background thread; returns once it accepts connections."""
        logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
        self._server, self._thread, self.port = serve_in_thread(self._app(), "fake-openai", self._serve)
        return self

    def stop(self) -> None:
        """Stop serving; scripted delays in progress end at once."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        self._loop = self._wake = None

    async def _serve(self, server: QuickExitServer, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        # One event ends both the serve loop and scripted delays in progress.
        self._wake = server.stop_event = asyncio.Event()
        await server.serve(sockets=[sock])

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeOpenAIServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # -- script and records ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Server root, where vLLM serves /health."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI base URL (ends in /v1), as ModelSettings.base_url and ChatOpenAI(base_url=...) expect."""
        return f"{self.url}/v1"

    def script(self, *replies: Responder) -> FakeOpenAIServer:
        """Queue answers for the next chat completion requests, in order."""
        with self._lock:
            self._script.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """Scripted answers not yet used."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat completion requests received so far."""
        return [r.body for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def last_body(self) -> dict[str, Any]:
        """Body of the latest chat completion request."""
        bodies = self.chat_bodies
        if not bodies:
            raise AssertionError("the fake OpenAI server received no chat completion request")
        return bodies[-1]

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self._requests.clear()

    # -- HTTP --------------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.url.path, dict(request.headers), body))
        return body

    def _unauthorized(self, request: Request) -> Response | None:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": "Unauthorized"}, status_code=401)  # vLLM's exact body
        return None

    async def _health(self, request: Request) -> Response:
        await self._record(request)
        return Response(status_code=self.health_status)

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        if denied := self._unauthorized(request):
            return denied
        created = int(time.time())
        data = [{"id": m, "object": "model", "created": created, "owned_by": "vllm", "root": m} for m in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        body = await self._record(request)
        if denied := self._unauthorized(request):
            return denied
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "request body must be a JSON object with messages")
        model = str(body.get("model", ""))
        if self.check_model and model not in self.models:
            return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
        reply = self._next_reply(body)
        if reply.delay_s:
            await self._sleep(reply.delay_s)
        if reply.kind == "status":
            return _error(reply.status_code, reply.error_message)
        if reply.kind == "drop":
            return _DropResponse()
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body["messages"] if isinstance(m, dict))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = stream_events(reply, model, prompt_tokens, include_usage)
            return StreamingResponse(self._sse(reply, events), media_type="text/event-stream")
        return JSONResponse(completion_body(reply, model, prompt_tokens))

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            responder = self._script.popleft() if self._script else self.default
        if responder is None:
            return Reply.status(500, "fake OpenAI server: no scripted reply left (script more, or set default)")
        return responder if isinstance(responder, Reply) else responder(body)

    async def _sse(self, reply: Reply, events: Iterable[dict[str, Any]]) -> AsyncIterator[bytes]:
        content_deltas = 0
        n_content = len(content_chunks(reply))
        for index, event in enumerate(events):
            # events[0] is the role chunk, then one chunk per content delta.
            if 1 <= index <= n_content:
                if reply.drop_after_chunks is not None and content_deltas >= reply.drop_after_chunks:
                    raise _DroppedConnection
                if reply.chunk_delay_s and content_deltas:
                    await self._sleep(reply.chunk_delay_s)
                content_deltas += 1
            yield f"data: {json.dumps(event)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def _sleep(self, seconds: float) -> None:
        # Woken by stop(), so shutting down never waits out a long scripted delay.
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)


_QUIET_DROPS = _QuietDrops()


def _error(status: int, message: str, kind: str = "BadRequestError") -> JSONResponse:
    if status >= 500:
        kind = "InternalServerError"
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}}, status)
