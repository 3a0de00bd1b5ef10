"""What a non-streamed chat completion becomes: text, decoded tool calls, finish reason, usage, latency."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inference.errors import InvalidModelOutput

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for, with its JSON arguments decoded."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts the server reported."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    """One non-streamed answer: text, tool calls, why it stopped, token usage and wall-clock latency."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage | None
    latency_s: float
    model: str


def to_completion(response: ChatCompletion, latency_s: float, *, model: str) -> Completion:
    """The SDK response as a Completion; InvalidModelOutput when it has no choice or unusable tool calls."""
    if not response.choices:
        raise InvalidModelOutput("The language model returned no answer.", raw=response.model_dump_json())
    choice = response.choices[0]
    message = choice.message
    usage = response.usage
    return Completion(
        text=message.content or "",
        tool_calls=tuple(tool_calls_of(message.tool_calls or ())),
        finish_reason=choice.finish_reason,
        usage=Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) if usage else None,
        latency_s=latency_s,
        model=response.model or model,
    )


def tool_calls_of(calls: Iterable[Any]) -> Iterable[ToolCall]:
    """Function tool calls with their JSON arguments decoded; InvalidModelOutput on undecodable arguments."""
    for call in calls:
        function = getattr(call, "function", None)
        if function is None:
            continue  # not a function call (custom tools are not used with vLLM)
        raw = function.arguments or "{}"
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidModelOutput(
                f"The model called {function.name} with arguments that are not valid JSON.", raw=raw, detail=str(exc)
            ) from None
        if not isinstance(arguments, dict):
            raise InvalidModelOutput(f"The model called {function.name} without an arguments object.", raw=raw)
        yield ToolCall(id=call.id, name=function.name, arguments=arguments)
