"""The order path: risk_check (validate, no side effect) → approve (Approval row + interrupt) → execute."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from sqlalchemy.exc import IntegrityError

from agents.deps import AgentDeps
from agents.nodes import SUPERSEDED, answered_ids, fixed_answer, last_ai
from agents.runner import AnalystChat, Reply
from agents.state import AgentState, TurnContext, to_dicts
from storage.models import Approval, ApprovalStatus, ExchangeAccount
from storage.repositories import approvals as approvals_repo
from storage.repositories import audit
from tools.agent_tools import PROPOSE_ORDER, ToolContext
from tools.agent_tools.batch import BATCH, changed_set
from tools.agent_tools.registry import TRADER_ONLY_NOTICE
from tools.exchange.models import IntentKind, OrderIntent, OrderRole, PlaceResult, Position, PositionSide
from tools.numbers import price_text, size_text

log = logging.getLogger(__name__)
DECISIONS = ("approve", "reject", "expired", "superseded")
_NOT_PLACED = {
    "reject": "Rejected: no order was placed.",
    "expired": "The confirmation expired: no order was placed.",
    "superseded": SUPERSEDED,
}


def intent_id_for(token: str) -> str:
    """The execution id of an approval: a resumed or repeated approval can never place twice."""
    return f"appr:{token}"


def pending_proposal_call(state: AgentState) -> ToolCall | None:
    """The model's propose_order call that has no result yet."""
    ai = last_ai(state)
    if ai is None:
        return None
    done = answered_ids(state)
    return next((c for c in ai.tool_calls if c["name"] == PROPOSE_ORDER and c["id"] not in done), None)


def make_risk_check_node(deps: AgentDeps) -> Any:
    """Deterministic validation of the proposal against the user's role, account, position, fresh price and guards.

    The role is read fresh from the database here, whatever the channel said when the message arrived: a trader
    role revoked a moment ago refuses the proposal, so no button is ever shown for it.
    """

    async def risk_check(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        call = pending_proposal_call(state)
        assert call is not None
        user_id = runtime.context.user_id
        if runtime.context.may_trade:
            async with deps.sessions() as session:
                may_trade = await deps.access.may_trade(session, user_id)
        else:
            may_trade = False
        if not may_trade:
            log.info("order proposal refused: user %s may not trade", user_id)
            msg = ToolMessage(TRADER_ONLY_NOTICE, tool_call_id=call["id"], name=PROPOSE_ORDER, status="error")
            return {"messages": to_dicts([msg]), "pending": None}
        ctx = ToolContext(user_id=user_id, store=runtime.store)
        result = await deps.toolkit.run(PROPOSE_ORDER, call["args"], ctx)
        if result.error or result.data is None:
            msg = ToolMessage(result.content, tool_call_id=call["id"], name=PROPOSE_ORDER, status="error")
            return {"messages": to_dicts([msg]), "pending": None}
        # The token is drawn here, in a node that completes before the interrupt, so it is checkpointed and
        # the approve node (which re-runs on resume) finds the same Approval row instead of making a second.
        return {"pending": {**result.data, "tool_call_id": call["id"], "token": approvals_repo.new_token()}}

    return risk_check


async def ensure_approval(deps: AgentDeps, pending: dict[str, Any], ctx: TurnContext, thread_id: str) -> Approval:
    """The Approval row of this proposal, created on first run only (idempotent by token)."""
    token = pending["token"]
    async with deps.sessions.begin() as session:
        row = await approvals_repo.get_approval(session, token)
        if row is not None:
            return row
    try:
        async with deps.sessions.begin() as session:
            row = await approvals_repo.create_approval(
                session,
                owner_user_id=ctx.user_id,
                intent=pending["intent"],
                summary=pending["summary"],
                ttl=timedelta(seconds=deps.approval_ttl_s),
                account_id=pending["account_id"],
                platform=ctx.platform,
                chat_ref=thread_id[:64],
                token=token,
            )
            await audit.record(
                session,
                "approval_requested",
                user_id=ctx.user_id,
                account_id=row.account_id,
                ref=token,
                data={"intent": pending["intent"], "summary": pending["summary"]},
            )
    except IntegrityError:
        async with deps.sessions() as session:
            existing = await approvals_repo.get_approval(session, token)
        assert existing is not None
        return existing
    return row


def make_approve_node(deps: AgentDeps) -> Any:
    """Stores the Approval row and interrupts with the exact action text; resumes with the person's decision."""

    async def approve(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        pending = dict(state["pending"] or {})
        thread_id = str(get_config()["configurable"]["thread_id"])
        row = await ensure_approval(deps, pending, runtime.context, thread_id)
        answer = interrupt(
            {
                "type": "approval",
                "token": row.token,
                "summary": row.summary,
                "expires_at": row.expires_at.isoformat(),
                "account": pending.get("account"),
            }
        )
        decision = answer.get("decision") if isinstance(answer, dict) else None
        return {"pending": {**pending, "decision": decision if decision in DECISIONS else "reject"}}

    return approve


def make_execute_node(deps: AgentDeps) -> Any:
    """Places an approved intent through the execution engine (idempotent by the token's intent id)."""

    async def execute(state: AgentState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
        pending = dict(state["pending"] or {})
        decision = pending.get("decision")
        if decision != "approve":
            text = _NOT_PLACED.get(str(decision), _NOT_PLACED["reject"])
        else:
            text = await _place(deps, pending, runtime.context.user_id)
        result = ToolMessage(text, tool_call_id=pending["tool_call_id"], name=PROPOSE_ORDER)
        return {"messages": to_dicts([result, fixed_answer(text)]), "pending": None}

    return execute


async def _place(deps: AgentDeps, pending: dict[str, Any], user_id: int) -> str:
    token = pending["token"]
    async with deps.sessions() as session:
        row = await approvals_repo.get_approval(session, token)
        account_row = await session.get(ExchangeAccount, pending["account_id"])
    # The resume value alone never places an order: the row must have been consumed by its owner.
    if row is None or row.owner_user_id != user_id or row.status != ApprovalStatus.CONSUMED.value:
        return "This order was not confirmed, so nothing was placed."
    if row.intent != pending["intent"] or row.intent_hash != approvals_repo.intent_hash(row.intent):
        return "The confirmed order does not match the proposal, so nothing was placed."
    recorded = row.result or {}
    if recorded.get("status") in ("placed", "failed"):
        # Settled after an interruption (looked up by client order id): say what happened, place nothing.
        return render_outcome(pending, recorded["status"], recorded.get("message") or "", recorded.get("realised_pnl"))
    if account_row is None:
        return "The account of this order no longer exists; nothing was placed."
    account = await deps.open_account(account_row)
    if row.intent.get("kind") == BATCH:
        return await _place_batch(deps, pending, token, row.intent, account_row, account)
    fields = dict(row.intent)
    shown = shown_position(fields.pop("position", None), fields["symbol"])
    intent = OrderIntent(intent_id=intent_id_for(token), **fields)
    position = None
    # An approval stored before positions were part of the intent (an entry has no position yet).
    if shown is None and intent.kind is not IntentKind.OPEN:
        side = (pending.get("position") or {}).get("side")
        position = next((p for p in await account.positions(intent.symbol) if p.side.value == side), None)
    outcome = await deps.executor.execute_approved_intent(
        row=account_row,
        account=account,
        intent=intent,
        position=position,
        action=f"manual_{pending.get('action', 'order')}",
        shown=shown,
    )
    async with deps.sessions.begin() as session:
        await approvals_repo.record_result(
            session,
            token,
            {
                "status": outcome.status,
                "message": outcome.message,
                "intent_id": outcome.intent_id,
                "realised_pnl": outcome.realised_pnl,
            },
        )
    message = outcome.message
    if intent.kind in (IntentKind.OPEN, IntentKind.CLOSE) and outcome.result is not None:
        # What the user got is the fill (the order's average), not the price shown with the proposal.
        message = entry_fill_text(outcome.result) or message
    return render_outcome(pending, outcome.status, message, outcome.realised_pnl)


async def _place_batch(
    deps: AgentDeps, pending: dict[str, Any], token: str, intent: dict[str, Any], row: ExchangeAccount, account: Any
) -> str:
    """Flatten winners / close all / cancel all: the set read again (changed → nothing placed), then each item
    through the executor (guards, access, its own intent id `appr:<token>:<n>`, audit)."""
    action, items = intent["action"], intent["items"]
    positions = await account.positions() if action != "cancel_all" else []
    orders = await account.open_orders() if action == "cancel_all" else []
    changed = changed_set(action, items, positions, orders)
    if changed is not None:
        async with deps.sessions.begin() as session:
            await audit.record(
                session,
                "guard_refused",
                user_id=row.user_id,
                account_id=row.id,
                ref=intent_id_for(token),
                data={"action": action, "reasons": [changed]},
            )
            await approvals_repo.record_result(session, token, {"status": "refused", "message": changed})
        return f"Not executed: {changed}."
    lines, statuses, pnl = [], [], 0.0
    for i, item in enumerate(items):
        fields = dict(item)
        shown = shown_position(fields.pop("position", None), fields["symbol"])
        one = OrderIntent(intent_id=f"{intent_id_for(token)}:{i}", **fields)
        if one.kind is IntentKind.CANCEL and one.order_id not in {o.id for o in await account.open_orders()}:
            # Cancelling an entry cancels its waiting stop and target too: already gone, by this very batch.
            statuses.append("duplicate")
            lines.append(f"- {one.symbol} order {one.order_id}: cancelled with its entry")
            continue
        outcome = await deps.executor.execute_approved_intent(
            row=row, account=account, intent=one, position=None, action=f"manual_{action}", shown=shown
        )
        statuses.append(outcome.status)
        pnl += outcome.realised_pnl or 0.0
        what = (
            f"{one.symbol} {shown.side.value} {_plain(shown.size)}" if shown else f"{one.symbol} order {one.order_id}"
        )
        done = {"placed": "done", "duplicate": "already done"}.get(outcome.status, outcome.status)
        extra = f", PnL {outcome.realised_pnl:+.2f} USDT" if outcome.realised_pnl is not None else ""
        lines.append(f"- {what}: {done}{extra}{'' if outcome.placed else ' (' + outcome.message + ')'}")
    ok = [s for s in statuses if s in ("placed", "duplicate")]
    status = "placed" if len(ok) == len(statuses) else "failed" if not ok else "partial"
    async with deps.sessions.begin() as session:
        await approvals_repo.record_result(
            session, token, {"status": status, "message": "; ".join(lines), "realised_pnl": pnl if pnl else None}
        )
    head = pending.get("summary", "").split("\n")[0]
    verdict = {"placed": "Executed", "partial": "Partly executed", "failed": "Not executed"}[status]
    total = f"\nRealised PnL {pnl:+.2f} USDT." if action != "cancel_all" and ok else ""
    return f"{verdict}: {head}\n" + "\n".join(lines) + total


def entry_fill_text(result: PlaceResult) -> str:
    """What an entry placed: the fill (or the resting limit) and its protective orders."""
    parts = []
    for order in result.orders:
        if order.role is OrderRole.MAIN:
            if order.filled and order.average is not None:
                filled = size_text(order.filled, symbol=order.symbol)
                parts.append(f"Filled {filled} at {price_text(order.average, order.symbol)}.")
            else:
                parts.append(f"Limit order resting at {price_text(order.price or Decimal(0), order.symbol)}.")
        elif order.trigger_price is not None:
            what = "Stop" if order.role is OrderRole.STOP_LOSS else "Take-profit"
            parts.append(f"{what} order at {price_text(order.trigger_price, order.symbol)} placed (reduce-only).")
    return " ".join(parts)


def _plain(value: Decimal, digits: int = 12) -> str:
    return format(round(value, digits).normalize(), "f")


def shown_position(shown: dict[str, Any] | None, symbol: str) -> Position | None:
    """The position an approval showed (side and absolute size), as stored in its intent."""
    if not shown:
        return None
    size = Decimal(str(shown["size"]))
    return Position(symbol=symbol, side=PositionSide(shown["side"]), size=size, entry_price=Decimal(0))


_PRICE_NOW = re.compile(r"\s*Price now [\d,.]+\.")


def render_outcome(pending: dict[str, Any], status: str, message: str, pnl: float | None) -> str:
    """What happened to the approved order, for the user."""
    summary = pending.get("summary", "the order")
    if status == "placed":
        extra = f" Realised PnL {pnl:+.2f} USDT." if pnl is not None else ""
        if pending.get("action") == "open":
            summary = summary.split("\n")[0]  # the plan was shown with the proposal; the result says what filled
        if "Filled " in message:
            # The pre-trade price was the proposal's; what the user got is the fill (the order's average).
            summary = _PRICE_NOW.sub("", summary).rstrip()
        return f"Executed: {summary}{(' ' + message) if message else ''}{extra}".strip()
    if status == "duplicate":
        return f"Already executed earlier ({message}); no second order was placed."
    if status == "unknown":
        return f"Checking with the exchange: the outcome of this order is not known yet ({message})."
    if status == "refused":
        return f"Not executed: {message}"
    return f"The order failed: {message}" if message else "The order failed."


async def propose_directly(chat: AnalystChat, ctx: TurnContext, text: str, args: dict[str, Any]) -> Reply:
    """A slash command's order: its validated propose_order arguments enter the graph at the risk check, then the
    approval interrupt, without the model (the command's text is kept in the conversation as the user's words).

    An order still waiting in the conversation is superseded first, exactly as a new message would.
    """
    thread_id = ctx.chat_ref
    graph = chat.command_graph
    config: Any = {"configurable": {"thread_id": thread_id}, "recursion_limit": 40}
    async with chat.turn_lock(thread_id):
        state = (await graph.aget_state(config)).values or {}
        new: list[BaseMessage] = []
        waiting = state.get("pending")
        if waiting and waiting.get("token") and not waiting.get("decision"):
            async with chat.sessions.begin() as session:
                await approvals_repo.reject_approval(session, waiting["token"], ctx.user_id)
            new += [ToolMessage(SUPERSEDED, tool_call_id=waiting["tool_call_id"], name=PROPOSE_ORDER)]
            new += [fixed_answer(SUPERSEDED)]
        call = {"name": PROPOSE_ORDER, "args": args, "id": f"cmd_{uuid.uuid4().hex[:16]}", "type": "tool_call"}
        new += [HumanMessage(text, id=uuid.uuid4().hex), AIMessage(content="", tool_calls=[call])]
        values = {"messages": to_dicts(new), "inbox": None, "pending": None, "steps": 0, "corrections": 0}
        # As if the tools node had just run: its edge sends the pending proposal to risk_check.
        await graph.aupdate_state(config, {**values, "attachments": [], "grounding": None}, as_node="tools")
        return await chat.run_graph(graph, None, ctx, thread_id)
