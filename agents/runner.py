"""Channel-agnostic driver of the analyst graph: one turn per message, and the approve/reject button handler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Durability
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.locks import ConversationLocks
from agents.state import TurnContext
from storage.models import ApprovalStatus
from storage.repositories import approvals as approvals_repo
from storage.repositories.approvals import Outcome
from tools.charts.store import ChartStore

log = logging.getLogger(__name__)
TokenSink = Callable[[str], None]
MAX_THREAD_ID = 64  # the approval row keeps the thread id in a 64-character column
FAILED = "Something went wrong while answering; please try again."


@dataclass
class ApprovalRequest:
    """An order waiting for the user's confirmation: show `summary` with approve/reject carrying `token`."""

    token: str
    summary: str
    expires_at: str


@dataclass
class Reply:
    """What to show the user after a turn."""

    text: str
    approval: ApprovalRequest | None = None
    attachments: list[str] = field(default_factory=list)  # ids of the charts drawn in the turn
    grounding: dict[str, Any] | None = None
    photos: list[bytes] = field(default_factory=list)  # those charts' PNG bytes, to send with the text


class AnalystChat:
    """Runs turns of the analyst graph per conversation thread; resumes it on approval decisions."""

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        sessions: async_sessionmaker[AsyncSession],
        *,
        command_graph: CompiledStateGraph[Any, Any, Any, Any] | None = None,
        durability: Durability = "exit",
        charts: ChartStore | None = None,
        toolkit: Any = None,
        streams: bool = True,
    ) -> None:
        # "exit": one checkpoint write per run (and at an interrupt) instead of one per step. A crash mid-turn
        # loses that turn only; an approved order re-runs `execute`, which is idempotent by the token.
        self.durability = durability
        self.graph = graph
        self.command_graph = command_graph or graph
        # Whether `graph`'s model streams tokens (the command graph's offline model never does). Without it the
        # turn is run without LangGraph's custom stream, which costs its setup every run and would carry nothing.
        self.streams = streams
        self.sessions = sessions
        # Where the chart tool leaves the PNGs whose ids the graph state carries (bytes never enter a checkpoint).
        self.charts = charts
        # The agent tools, for slash commands that call them directly (no graph, no checkpoint).
        self.toolkit = toolkit
        # One turn at a time per thread, in this process and (on PostgreSQL) across the deployment's processes.
        self.locks = ConversationLocks(sessions)

    def _lock(self, thread_id: str) -> Any:
        return self.locks.hold(thread_id)

    async def close(self) -> None:
        """Release what the chat holds beyond the graph (the lock connections)."""
        await self.locks.close()

    def turn_lock(self, thread_id: str) -> Any:
        """The conversation's lock: whoever changes its graph state holds it (turns, presses, direct proposals)."""
        return self._lock(thread_id)

    async def run_graph(
        self, graph: CompiledStateGraph[Any, Any, Any, Any], payload: Any, ctx: TurnContext, thread_id: str
    ) -> Reply:
        """Run `graph` on the thread with `payload` (a state, a resume Command, or None to continue); hold the lock."""
        return await self._run(graph, payload, ctx, thread_id, None)

    @staticmethod
    def _config(thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 40}

    async def ask(self, ctx: TurnContext, thread_id: str, text: str, on_token: TokenSink | None = None) -> Reply:
        """Answer one message of the conversation `thread_id` (slash commands use the deterministic graph)."""
        if len(thread_id) > MAX_THREAD_ID:
            raise ValueError(f"thread ids are at most {MAX_THREAD_ID} characters")
        graph = self.command_graph if text.startswith("/") else self.graph
        # No "pending" key: the agent node reads it from the checkpoint to drop an order still waiting for
        # approval (one checkpoint read per turn, and correct whichever process ran the previous turn).
        state = {
            "inbox": text.removeprefix("/"),
            "attachments": [],
            "steps": 0,
            "corrections": 0,
            "grounding": None,
        }
        async with self._lock(thread_id):
            return await self._run(graph, state, ctx, thread_id, on_token)

    async def pending_approval(self, thread_id: str) -> ApprovalRequest | None:
        """The approval the conversation is waiting for, if any."""
        snapshot = await self.graph.aget_state(self._config(thread_id))
        for intr in snapshot.interrupts:
            value = intr.value
            if isinstance(value, dict) and value.get("type") == "approval":
                return ApprovalRequest(value["token"], value["summary"], value["expires_at"])
        return None

    async def decide(self, ctx: TurnContext, token: str, approve: bool) -> Reply:
        """Handle an approve/reject press: atomically flip the row, then resume the waiting conversation."""
        async with self.sessions() as session:
            found = await approvals_repo.get_approval(session, token)
        if found is None:
            return Reply("This confirmation is not valid for you.")
        thread_id = found.chat_ref or ""
        # The flip happens under the conversation's lock: a message arriving at the same moment either comes
        # before (and cancels the order: this press then finds it rejected) or after (the order runs first).
        async with self._lock(thread_id):
            async with self.sessions.begin() as session:
                fn = approvals_repo.consume_approval if approve else approvals_repo.reject_approval
                decision = await fn(session, token, ctx.user_id)
            row = decision.approval
            if decision.outcome in (Outcome.NOT_FOUND, Outcome.NOT_OWNER) or row is None:
                return Reply("This confirmation is not valid for you.")
            waiting = await self.pending_approval(thread_id)
            if waiting is None or waiting.token != token:
                return Reply(_already(row.status, row.result))
            resume = _resume_value(decision.outcome, row.status, approve)
            return await self._run(self.graph, Command(resume={"decision": resume}), ctx, thread_id, None)

    async def resume(self, ctx: TurnContext, token: str, decision: str) -> Reply | None:
        """Finish the conversation `ctx.chat_ref` waiting on `token` with `decision`; None when it waits for no such
        approval. Used when an interrupted order is settled: the execute step then reports the recorded truth."""
        thread_id = ctx.chat_ref
        async with self._lock(thread_id):
            waiting = await self.pending_approval(thread_id)
            if waiting is None or waiting.token != token:
                return None
            return await self._run(self.graph, Command(resume={"decision": decision}), ctx, thread_id, None)

    async def _run(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        payload: Any,
        ctx: TurnContext,
        thread_id: str,
        on_token: TokenSink | None,
    ) -> Reply:
        reply = Reply("")
        tokens = on_token is not None and self.streams and graph is self.graph
        try:
            async for part in graph.astream(
                payload,
                self._config(thread_id),
                context=ctx,
                stream_mode=["updates", "custom"] if tokens else ["updates"],
                durability=self.durability,
            ):
                # With a list of stream modes each part is a (mode, chunk) pair; langgraph's stubs type it as the
                # single-mode chunk.
                mode, chunk = cast("tuple[str, Any]", part)
                if mode == "custom":
                    if on_token is not None and isinstance(chunk, dict) and chunk.get("token"):
                        on_token(chunk["token"])
                    continue
                _collect(reply, chunk)
        except Exception:
            log.exception("analyst turn failed (thread %s)", thread_id)
            return Reply(FAILED)
        if self.charts is not None:
            reply.photos = [png for cid in reply.attachments if (png := self.charts.take(cid)) is not None]
        return reply


def _collect(reply: Reply, chunk: dict[str, Any]) -> None:
    for node, update in chunk.items():
        if node == "__interrupt__":
            for intr in update:
                v = intr.value
                if isinstance(v, dict) and v.get("type") == "approval":
                    reply.approval = ApprovalRequest(v["token"], v["summary"], v["expires_at"])
                    reply.text = f"Proposed order: {v['summary']}"
            continue
        if not isinstance(update, dict):
            continue
        for m in update.get("messages") or []:
            if m["type"] == "human":
                reply.text = ""  # what came before the user's message (a superseded order) is not the answer
            elif m["type"] == "ai" and isinstance(m["data"].get("content"), str) and not m["data"].get("tool_calls"):
                reply.text = m["data"]["content"]
        if update.get("attachments"):
            reply.attachments = list(update["attachments"])
        if update.get("grounding") is not None:
            reply.grounding = update["grounding"]


def _resume_value(outcome: Outcome, status: str, approve: bool) -> str:
    if outcome is Outcome.OK:
        return "approve" if approve else "reject"
    if outcome is Outcome.EXPIRED:
        return "expired"
    # Already decided: a consumed row whose conversation still waits (the process stopped before executing)
    # is resumed; execution is idempotent by the token, so this never places a second order.
    if status == ApprovalStatus.CONSUMED.value:
        return "approve"
    if status == ApprovalStatus.EXPIRED.value:
        return "expired"
    return "reject"


def _already(status: str, result: dict[str, Any] | None) -> str:
    if status == ApprovalStatus.CONSUMED.value:
        outcome = (result or {}).get("status")
        if outcome in ("placed", "duplicate"):
            return "This order was already executed; nothing more was placed."
        if outcome is None or outcome in approvals_repo.UNSETTLED_RESULTS:
            # Consumed but no outcome: an earlier attempt may still be reaching the exchange. Never claim it ran.
            return (
                "This order was confirmed and is being checked with the exchange; its outcome is not known yet, "
                "and nothing more will be placed."
            )
        detail = (result or {}).get("message") or outcome
        return f"This order was already confirmed but not executed ({detail}); nothing more was placed."
    if status == ApprovalStatus.EXPIRED.value:
        return "This confirmation has expired; no order was placed."
    return "This order was already rejected or cancelled; no order was placed."
