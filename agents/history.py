"""What the model sees of a conversation: a token-budgeted tail with every tool call answered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately

DEFAULT_TOKEN_BUDGET = 5000


def model_history(messages: list[BaseMessage], budget: int = DEFAULT_TOKEN_BUDGET) -> list[BaseMessage]:
    """The latest messages within `budget` tokens, starting on a user message, tool calls paired with results."""
    trimmed = trim_messages(
        messages,
        max_tokens=budget,
        token_counter=count_tokens_approximately,
        strategy="last",
        start_on="human",
        allow_partial=False,
    )
    if not trimmed and messages:
        trimmed = messages[-1:]  # one oversized message still beats an empty prompt
    return repair_tool_pairs(trimmed)


def stored_tail(messages: Sequence[dict[str, Any]], budget: int = DEFAULT_TOKEN_BUDGET) -> list[dict[str, Any]]:
    """The stored messages `model_history` can reach, so a long thread is not parsed whole every step.

    A message costs at least len(text) / 4 tokens, so once the tail's text alone is over the budget,
    everything older is cut by the trim anyway.
    """
    limit, chars = 4 * budget, 0
    for i in range(len(messages) - 1, -1, -1):
        content = messages[i]["data"].get("content")
        chars += len(content) if isinstance(content, str) else 0
        if chars > limit:
            return list(messages[i:])
    return list(messages)


def repair_tool_pairs(messages: list[BaseMessage]) -> list[BaseMessage]:
    """Answer dangling tool calls and drop orphan results: OpenAI-protocol servers reject both."""
    out: list[BaseMessage] = []
    open_ids: list[str] = []
    for m in messages:
        if isinstance(m, ToolMessage):
            if m.tool_call_id in open_ids:
                open_ids.remove(m.tool_call_id)
                out.append(m)
            continue
        out.extend(_closing(open_ids))
        open_ids = []
        out.append(m)
        if isinstance(m, AIMessage):
            open_ids = [i for c in m.tool_calls if (i := c.get("id"))]
            open_ids += [i for c in m.invalid_tool_calls if (i := c.get("id"))]
    out.extend(_closing(open_ids))
    return out


def _closing(ids: list[str]) -> list[BaseMessage]:
    return [ToolMessage("No result: this call was not completed.", tool_call_id=i, status="error") for i in ids]
