"""A scripted chat model for graph tests: replays AI messages, records what it was sent, streams text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import Field


def call(name: str, args: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    """A tool call as the model would emit it."""
    return {"name": name, "args": args, "id": call_id or f"call_{name}_{json.dumps(args, sort_keys=True)[:20]}"}


class ScriptedChatModel(BaseChatModel):
    """Answers with the scripted messages in order; `seen` keeps every prompt, `bound` the tool names."""

    script: list[Any] = Field(default_factory=list)  # AIMessage, or a function of the prompt returning one
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        """Record the tool names; the same object answers (so the test keeps one script)."""
        self.bound = [t.name if isinstance(t, BaseTool) else str(t) for t in tools]
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        self.seen.append(list(messages))
        if not self.script:
            return AIMessage(content="(script exhausted)")
        item = self.script.pop(0)
        return item(messages) if callable(item) else item

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        msg = self._next(messages)
        if msg.tool_calls:
            chunks = [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i, "type": "tool_call_chunk"}
                for i, c in enumerate(msg.tool_calls)
            ]
            yield ChatGenerationChunk(message=AIMessageChunk(content=str(msg.content), tool_call_chunks=chunks))  # type: ignore[arg-type]
            return
        words = str(msg.content).split(" ")
        for i, w in enumerate(words):
            yield ChatGenerationChunk(message=AIMessageChunk(content=w if i == 0 else " " + w))
