"""Scripted answers of the fake OpenAI server: text, JSON, tool calls, HTTP errors, delays, dropped connections."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

ReplyKind = Literal["message", "status", "drop"]


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    """One function call in a scripted answer; `arguments` is the raw JSON string the model "wrote"."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer to one chat completion request; build it with the class methods."""

    kind: ReplyKind = "message"
    content: str | None = None
    calls: tuple[ScriptedToolCall, ...] = ()
    finish_reason: str = "stop"
    status_code: int = 200
    error_message: str = ""
    delay_s: float = 0.0
    chunks: tuple[str, ...] | None = None  # stream deltas; None splits `content` into words
    chunk_delay_s: float = 0.0
    drop_after_chunks: int | None = None  # streaming: cut the connection after this many content deltas

    @classmethod
    def text(cls, content: str, *, finish_reason: str = "stop") -> Reply:
        """A plain assistant message."""
        return cls(content=content, finish_reason=finish_reason)

    @classmethod
    def raw(cls, content: str) -> Reply:
        """Content sent verbatim, e.g. broken JSON for a structured-output request."""
        return cls(content=content)

    @classmethod
    def json(cls, data: Any) -> Reply:
        """A message whose content is `data` serialised as JSON."""
        return cls(content=json.dumps(data))

    @classmethod
    def tool_call(
        cls, name: str, arguments: dict[str, Any] | str, *, call_id: str | None = None, content: str | None = None
    ) -> Reply:
        """A single function call; a str `arguments` is sent as is (to script invalid JSON)."""
        return cls.tool_calls((name, arguments), content=content, ids=[call_id] if call_id else None)

    @classmethod
    def tool_calls(
        cls,
        *calls: tuple[str, dict[str, Any] | str],
        content: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> Reply:
        """Several function calls in one answer, each as (name, arguments)."""
        built = tuple(
            ScriptedToolCall(
                id=(ids[i] if ids and i < len(ids) else f"call_{uuid.uuid4().hex[:12]}"),
                name=name,
                arguments=args if isinstance(args, str) else json.dumps(args),
            )
            for i, (name, args) in enumerate(calls)
        )
        return cls(content=content, calls=built, finish_reason="tool_calls")

    @classmethod
    def stream(cls, chunks: Sequence[str], *, chunk_delay_s: float = 0.0, drop_after: int | None = None) -> Reply:
        """A message streamed as exactly these deltas (non-streaming requests get them joined)."""
        return cls(
            content="".join(chunks), chunks=tuple(chunks), chunk_delay_s=chunk_delay_s, drop_after_chunks=drop_after
        )

    @classmethod
    def status(cls, code: int, message: str | None = None) -> Reply:
        """An HTTP error with an OpenAI-style error body."""
        return cls(kind="status", status_code=code, error_message=message or f"scripted HTTP {code}")

    @classmethod
    def drop(cls) -> Reply:
        """Close the connection without a complete answer."""
        return cls(kind="drop")

    @classmethod
    def delay(cls, seconds: float, reply: Reply) -> Reply:
        """`reply`, sent only after waiting `seconds`."""
        return replace(reply, delay_s=seconds)

    def after(self, seconds: float) -> Reply:
        """This reply, sent only after waiting `seconds`."""
        return replace(self, delay_s=seconds)


# A callable receives the request body and decides, e.g. to echo the last user message.
Responder = Reply | Callable[[dict[str, Any]], Reply]


def completion_body(reply: Reply, model: str, prompt_tokens: int) -> dict[str, Any]:
    """The non-streaming `chat.completion` JSON for `reply`."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.calls
        ]
    return {
        **_envelope("chat.completion", model),
        "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        "usage": usage(prompt_tokens, reply),
    }


def stream_events(reply: Reply, model: str, prompt_tokens: int, include_usage: bool) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed `reply`, without the final [DONE]."""
    head = _envelope("chat.completion.chunk", model)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in content_chunks(reply)]
    for index, call in enumerate(reply.calls):
        events.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        # Arguments arrive in pieces in real streams; clients must concatenate them.
        half = len(call.arguments) // 2
        for piece in (call.arguments[:half], call.arguments[half:]):
            events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    events.append(chunk({}, reply.finish_reason))
    if include_usage:
        events.append({**head, "choices": [], "usage": usage(prompt_tokens, reply)})
    return events


def content_chunks(reply: Reply) -> list[str]:
    """The content deltas of a streamed reply: the scripted chunks, or the content split after each word."""
    if reply.chunks is not None:
        return list(reply.chunks)
    text = reply.content or ""
    pieces: list[str] = []
    start = 0
    for i, ch in enumerate(text):
        if ch == " ":
            pieces.append(text[start : i + 1])
            start = i + 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def usage(prompt_tokens: int, reply: Reply) -> dict[str, int]:
    """Approximate token counts (words), enough for clients that read usage."""
    completion = len((reply.content or "").split()) + sum(len(c.arguments.split()) for c in reply.calls)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion, "total_tokens": prompt_tokens + completion}


def _envelope(kind: str, model: str) -> dict[str, Any]:
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": kind, "created": int(time.time()), "model": model}
