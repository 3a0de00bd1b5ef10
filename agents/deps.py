"""What the graph's nodes need, passed in once when the graph is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.history import DEFAULT_TOKEN_BUDGET
from engine.access import AccessPolicy
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
    # Who may trade: risk_check asks it fresh from the database at the moment an order is proposed.
    access: AccessPolicy = field(default_factory=AccessPolicy)
    _bound: dict[bool, Runnable[Any, Any]] = field(default_factory=dict)

    @property
    def direct_model(self) -> DirectModel | None:
        """The model itself when it can be called directly (no network, no callbacks needed), else None."""
        # What isinstance(model, DirectModel) decides, without a runtime Protocol check (tens of µs each, and the
        # agent node asks several times a step).
        return cast(DirectModel, self.model) if callable(getattr(self.model, "respond", None)) else None

    @property
    def bound_model(self) -> Runnable[Any, Any]:
        """The model with every tool schema bound (built once)."""
        return self.bound_for(True)

    def bound_for(self, may_trade: bool) -> Runnable[Any, Any]:
        """The model with the tools this user may have bound: all of them, or only the public read-only ones."""
        bound = self._bound.get(may_trade)
        if bound is None:
            bound = self._bound[may_trade] = self.model.bind_tools(self.toolkit.langchain_tools(may_trade))
        return bound
