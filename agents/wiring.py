"""Builds the analyst from the services: chat model (OpenAI-compatible or offline), tools, graph, persistence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from agents.deps import AgentDeps
from agents.evaluation import RulesEvaluator
from agents.graph import build_graph
from agents.offline import OfflineChatModel
from agents.persistence import Persistence, open_persistence
from agents.runner import AnalystChat
from agents.services import AgentServices, ChatModelSettings
from inference.prompts import load_prompt
from tools.agent_tools import ToolDeps, Toolkit
from tools.structure.mtf import StructureCache


def build_chat_model(model_settings: ChatModelSettings) -> BaseChatModel:
    """ChatOpenAI against the configured endpoint, or the offline model when none is set."""
    if model_settings.offline:
        return OfflineChatModel()
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=model_settings.base_url,
        api_key=SecretStr(model_settings.api_key.get_secret_value() or "EMPTY"),
        model=model_settings.analyst_model,
        temperature=model_settings.analyst_temperature,
        max_completion_tokens=model_settings.max_tokens,
        timeout=model_settings.timeout_s,
        max_retries=0,
        streaming=True,
    )


def build_toolkit(services: AgentServices, cache: StructureCache | None = None) -> Toolkit:
    """The agent tools over the services' market, database and accounts."""
    cache = cache or StructureCache()
    s = services.settings
    deps = ToolDeps(
        market=services.market,
        sessions=services.sessions,
        open_account=services.open_fresh_account,  # the tools open the row they have just listed
        default_risk_pct=s.risk.default_risk_pct,
        default_capital=s.exchange.paper_balance,
        default_limit_expiry_h=s.exchange.limit_expiry_h,
        cache=cache,
        evaluate=RulesEvaluator(services.market, cache),
        premium=services.premium,
        renderer=services.chart_renderer,
    )
    return Toolkit(deps)


def build_deps(
    services: AgentServices, model: BaseChatModel | None = None, toolkit: Toolkit | None = None
) -> AgentDeps:
    """Graph dependencies from the services (the model from the settings unless one is given)."""
    settings = services.settings
    model = model or build_chat_model(settings.model)
    return AgentDeps(
        model=model,
        toolkit=toolkit or build_toolkit(services),
        sessions=services.sessions,
        executor=services.executor,
        open_account=services.open_account,
        system_prompt=load_prompt("analyst").text,
        approval_ttl_s=settings.risk.approval_ttl_s,
        timeout_s=None if isinstance(model, OfflineChatModel) else settings.model.timeout_s,
        access=settings.access_policy(),
    )


def build_chat(services: AgentServices, persistence: Persistence, model: BaseChatModel | None = None) -> AnalystChat:
    """The analyst chat on a checkpointer; slash commands always go through the offline (deterministic) model."""
    deps = build_deps(services, model)
    graph = build_graph(deps, persistence.checkpointer, persistence.store)
    command_graph = graph
    if not isinstance(deps.model, OfflineChatModel):
        offline = AgentDeps(**{**deps.__dict__, "model": OfflineChatModel(), "_bound": {}, "timeout_s": None})
        command_graph = build_graph(offline, persistence.checkpointer, persistence.store)
    return AnalystChat(
        graph,
        services.sessions,
        command_graph=command_graph,
        charts=deps.toolkit.deps.charts,
        toolkit=deps.toolkit,
        streams=deps.direct_model is None,
    )


@asynccontextmanager
async def open_chat(services: AgentServices, model: BaseChatModel | None = None) -> AsyncIterator[AnalystChat]:
    """The analyst chat with its persistence opened for the services' database (closed on exit)."""
    async with open_persistence(services.settings.database) as persistence:
        yield build_chat(services, persistence, model)
