"""What the graph's nodes need, passed in once when the graph is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.history import DEFAULT_TOKEN_BUDGET
from engine.execution.executor import Executor
from storage.models import ExchangeAccount
from tools.agent_tools import Toolkit
from tools.exchange.base import Account

# Model calls per turn before the agent gives up on tools and answers.
MAX_STEPS = 8


@runtime_checkable
class DirectModel(Protocol):
    """A local, synchronous, deterministic model (the offline one) that the agent may call without LangChain's
    streaming and callback machinery: it answers whole at once (nothing is streamed), from the current turn alone
    (system prompt, the user's message, this turn's tool calls and results); its read-only tool calls run inside
    the agent node."""

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next message for `messages` (the system prompt and the current turn)."""
        ...


@dataclass
class AgentDeps:
    """Model, tools, storage and the execution engine of one analyst graph."""

    model: BaseChatModel
    toolkit: Toolkit
    sessions: async_sessionmaker[AsyncSession]
    executor: Executor
    open_account: Callable[[ExchangeAccount], Awaitable[Account]]
    system_prompt: str
    approval_ttl_s: int = 300
    token_budget: int = DEFAULT_TOKEN_BUDGET
    max_steps: int = MAX_STEPS
    grounding: bool = True
    timeout_s: float | None = None
    _bound: Runnable[Any, Any] | None = None

    @property
    def direct_model(self) -> DirectModel | None:
        """The model itself when it can be called directly (no network, no callbacks needed), else None."""
        return self.model if isinstance(self.model, DirectModel) else None

    @property
    def bound_model(self) -> Runnable[Any, Any]:
        """The model with the tool schemas bound (built once)."""
        if self._bound is None:
            self._bound = self.model.bind_tools(self.toolkit.langchain_tools())
        return self._bound
