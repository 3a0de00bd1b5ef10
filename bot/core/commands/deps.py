"""What every command module uses: its dependencies, and the two ways a command answers (read or propose)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.approval import propose_directly
from agents.offline.intents import Request
from agents.offline.model import answer_directly
from agents.runner import AnalystChat
from bot.core.dispatcher import reply_outbound, turn_context
from bot.core.messages import Outbound
from bot.core.registry import CommandCall, Permission
from engine.alerts.parse import JsonModel
from engine.reports.jobs import ReportJobs
from storage.secrets import SecretBox
from tools.agent_tools.base import PreferenceStore, ToolContext


@dataclass
class CommandDeps:
    """What the command handlers use."""

    chat: AnalystChat
    sessions: async_sessionmaker[AsyncSession]
    secret_box: Callable[[], SecretBox]
    store: PreferenceStore | None = None
    forget_user: Callable[[str, str], None] | None = None
    reports: ReportJobs | None = None  # reports, subscriptions and the scan (None: not in this deployment)
    rule_model: JsonModel | None = None  # reads alert rules the grammar cannot (a configured model only)


async def answer(deps: CommandDeps, call: CommandCall, req: Request, private: bool = False) -> Outbound:
    """A read-only command: its tools called directly with the validated arguments, the answer rendered; no graph."""
    toolkit = deps.chat.toolkit
    text, data = await answer_directly(toolkit, ToolContext(user_id=call.user_id, store=deps.store), req)
    chart = data.get("get_chart") or {}
    photo = toolkit.deps.charts.take(chart["chart"]) if isinstance(chart.get("chart"), str) else None
    return Outbound(text, photo=photo, private=private)


async def propose(deps: CommandDeps, call: CommandCall, args: dict[str, Any]) -> Outbound:
    """An order command: its arguments enter the analyst graph at the risk check, then the approval interrupt."""
    ctx = turn_context(call.inbound, call.user_id, may_trade=call.permission >= Permission.TRADER)
    return reply_outbound(await propose_directly(deps.chat, ctx, call.inbound.text, args))


def read(deps: CommandDeps, kind: str, private: bool = False) -> Callable[[CommandCall], Any]:
    """A handler answering with the read-only tools of `kind` from the call's validated arguments."""

    async def handler(call: CommandCall) -> Outbound:
        a = call.args
        req = Request(
            kind,
            symbol=getattr(a, "symbol", None),
            timeframe=getattr(a, "timeframe", None),
            entry=getattr(a, "entry", None),
            stop=getattr(a, "stop", None),
            risk_pct=getattr(a, "risk", None),
        )
        return await answer(deps, call, req, private)

    return handler
