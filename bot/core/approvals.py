"""Approvals for every channel: check a press, consume or reject it once, carry it out, expire old ones.

Two kinds of approval exist: the analyst graph's (an order proposal waiting in a conversation, resumed through
`AnalystChat.decide`) and the position monitor's (a risk action proposed in advise mode, carried out by
`engine.execution.proposals`). Either way the atomic pending → consumed flip in the repository is the guard:
of any number of presses, in any number of processes, exactly one places the order.

A process killed between the press and the order leaves a consumed approval without an outcome. `settle` (at
start-up) and a later press (before any retry) look its order up by client order id: placed → the message says
so; never placed → the approval is pending again and the next press places it once; not known yet → the message
says the exchange is being checked, never "already executed".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.runner import AnalystChat
from agents.state import TurnContext
from bot.core.messages import Outbound, approval_buttons
from engine.alerts.confirm import decide_rule, is_rule_confirmation
from engine.alerts.confirm import refusal as rule_refusal
from engine.execution.executor import Executor
from engine.execution.proposals import INTENT_PREFIX, OpenAccount, execute_proposal, is_monitor_proposal
from engine.execution.settle import INTERRUPTED, SettledApproval, settle_approvals, settle_executions
from storage.keyed_lock import KeyedLock
from storage.models import Approval, ApprovalStatus
from storage.repositories import approvals as approvals_repo
from storage.repositories import engine as engine_repo
from storage.repositories.approvals import Outcome
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.core.dispatcher import MessageEditor

log = logging.getLogger(__name__)
# How far back start-up looks for consumed approvals without an outcome (confirmations live minutes).
SETTLE_WINDOW = timedelta(days=2)
CHECKING_TEXT = (
    "Checking with the exchange: the outcome of this order is not known yet. Nothing more will be placed; "
    "look at your positions before trying again."
)
NOT_VALID = "This button is no longer valid."
NOT_YOURS = "This confirmation belongs to someone else; only they can press it."
EXPIRED_TEXT = "Expired: no order was placed."


def already_text(status: str, result: dict[str, Any] | None = None) -> str:
    """Why a decided approval cannot be pressed again (the truth about its order, as far as it is known)."""
    if status == ApprovalStatus.CONSUMED.value:
        outcome = (result or {}).get("status")
        if outcome in ("placed", "duplicate"):
            return "Already executed; nothing more will be placed."
        if outcome in (None, *approvals_repo.UNSETTLED_RESULTS):
            return CHECKING_TEXT
        detail = (result or {}).get("message") or outcome
        return f"Already confirmed, but it was not executed ({detail}); nothing more will be placed."
    if status == ApprovalStatus.EXPIRED.value:
        return "This confirmation has expired; no order was placed."
    return "Already rejected; no order was placed."


@dataclass
class Settlement:
    """What became of an interrupted approval's order, and what its button message must say now."""

    approval: Approval
    status: str  # placed | not_placed | failed | unknown
    text: str
    reopened: bool = False  # pending again: the message shows its buttons, the next press places the order


def closed_text(summary: str, outcome: str) -> str:
    """The text a button message is edited to once it is decided or expired."""
    return f"{summary}\n\n{outcome}" if summary else outcome


class ApprovalsService:
    """Checks, decides and expires approvals; one lock per token keeps presses in one process in order."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        chat: AnalystChat,
        executor: Executor,
        open_account: OpenAccount,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.chat = chat
        self.executor = executor
        self.open_account = open_account
        self.clock = clock
        # A lock lives only while a press holds or awaits it, so buttons never pile up here.
        self._locks: KeyedLock[str] = KeyedLock()

    def lock(self, token: str) -> AbstractAsyncContextManager[None]:
        """Serialises presses of one button within this process (the database guards across processes)."""
        return self._locks.hold(token)

    async def get(self, token: str) -> Approval | None:
        """The approval behind a token."""
        async with self.sessions() as session:
            return await approvals_repo.get_approval(session, token)

    def refusal(self, row: Approval | None, user_id: int) -> str | None:
        """Why this user's press of the approval `row` cannot work (pre-check), or None when it may proceed."""
        if row is None:
            return NOT_VALID
        if row.owner_user_id != user_id:
            return NOT_YOURS
        if is_rule_confirmation(row):  # an alert rule's [Confirm] [Cancel]: no order behind it
            return rule_refusal(row, self.clock())
        if not approvals_repo.is_settled(row):
            return None  # the press settles the interrupted order first (`decide`), whatever the expiry says
        if row.status != ApprovalStatus.PENDING.value:
            return already_text(row.status, row.result)
        if row.expires_at <= self.clock():
            return already_text(ApprovalStatus.EXPIRED.value)
        return None

    async def decide(self, ctx: TurnContext, row: Approval, approve: bool) -> str:
        """Consume (approve) or reject the approval once and carry it out; returns the outcome for the user."""
        if is_rule_confirmation(row):
            return await decide_rule(self.sessions, row, ctx.user_id, approve, self.clock())
        token = row.token
        if not approvals_repo.is_settled(row):
            # Before any retry: an earlier press of this button was interrupted; find out what it did.
            settled = await self._settle_press(row)
            if not settled.reopened:
                return settled.text
            fresh = await self.get(token)
            if fresh is None:
                return NOT_VALID
            row = fresh
        if not is_monitor_proposal(row):
            return (await self.chat.decide(ctx, token, approve)).text
        async with self.sessions.begin() as session:
            fn = approvals_repo.consume_approval if approve else approvals_repo.reject_approval
            decision = await fn(session, token, ctx.user_id, now=self.clock())
        if decision.outcome is Outcome.NOT_OWNER:
            return NOT_YOURS
        if decision.outcome is not Outcome.OK or decision.approval is None:
            status = decision.approval.status if decision.approval else ApprovalStatus.REJECTED.value
            return already_text(status, decision.approval.result if decision.approval else None)
        if not approve:
            return "Rejected: no order was placed."
        outcome = await execute_proposal(self.executor, self.sessions, self.open_account, decision.approval)
        if outcome.placed:
            return f"Executed.{(' ' + outcome.message) if outcome.message else ''}"
        if outcome.status == "duplicate":
            return f"Already executed earlier ({outcome.message}); no second order was placed."
        if outcome.status == "unknown":
            return CHECKING_TEXT
        return f"Not executed: {outcome.message or outcome.status}."

    @staticmethod
    def acknowledgement(row: Approval, approve: bool) -> str:
        """What the press answers at once, before the outcome is known."""
        if is_rule_confirmation(row):
            return "Confirmed." if approve else "Cancelled."
        return "Confirmed, placing the order…" if approve else "Rejected."

    async def trade_free(self, token: str) -> bool:
        """True when approving `token` places no order (an alert rule's confirmation), so no trader role is needed."""
        row = await self.get(token)
        return row is not None and is_rule_confirmation(row)

    async def attach_message(self, token: str, platform: str, message_ref: str) -> None:
        """Remember which message shows the buttons, so it can be edited when the approval expires."""
        async with self.sessions.begin() as session:
            row = await approvals_repo.get_approval(session, token)
            if row is not None:
                row.platform, row.message_ref = platform, message_ref

    async def expire(self) -> list[Approval]:
        """Flip overdue approvals to expired; returns them (with their platform and message ref) for editing."""
        async with self.sessions.begin() as session:
            return await approvals_repo.expire_approvals(session, now=self.clock())

    async def settle(self, older_than: timedelta = timedelta(0)) -> list[Settlement]:
        """Settle every interrupted order (at start-up): pending executions by client order id, then approvals.

        A starting process has nothing of its own in flight, so `older_than` is 0 there; an order a live peer
        is placing at that moment is still placed once, because the exchange and the paper account deduplicate
        by the same client order id and the peer's own finish overwrites a premature "not placed".
        """
        before = self.clock() - older_than
        await settle_executions(self.executor, self.sessions, self.open_account, before)
        unsettled = await settle_approvals(self.sessions, before, before - SETTLE_WINDOW)
        return [await self._apply(item) for item in unsettled]

    async def tell(self, settlements: list[Settlement], editors: Mapping[str, MessageEditor]) -> int:
        """Edit each settled approval's button message with the truth; returns how many were edited."""
        edited = 0
        for item in settlements:
            row = item.approval
            editor = editors.get(row.platform or "")
            if editor is None or not row.message_ref:
                continue
            buttons = approval_buttons(row.token) if item.reopened else []
            try:
                await editor.edit_ref(row.message_ref, Outbound(closed_text(row.summary, item.text), buttons=buttons))
                edited += 1
            except Exception:
                log.warning("could not tell the outcome of approval %s… in its chat", row.token[:6], exc_info=True)
        return edited

    async def _settle_press(self, row: Approval) -> Settlement:
        """Settle one approval's interrupted order now, unless the attempt may still be in flight elsewhere."""
        window = self.executor.in_flight
        now = self.clock()
        async with self.sessions() as session:
            execution = await engine_repo.get_execution(session, f"{INTENT_PREFIX}{row.token}")
        if execution is not None and execution.status == engine_repo.PENDING:
            if now - execution.created_at < window:
                return Settlement(row, "unknown", CHECKING_TEXT)
            await settle_executions(self.executor, self.sessions, self.open_account, now - window)
        elif execution is None and row.decided_at is not None and now - row.decided_at < window:
            return Settlement(row, "unknown", CHECKING_TEXT)  # a peer may be about to claim it
        items = await settle_approvals(self.sessions, now, now - SETTLE_WINDOW, token=row.token)
        if not items:
            fresh = await self.get(row.token)
            return Settlement(row, "unknown", already_text(fresh.status, fresh.result) if fresh else NOT_VALID)
        return await self._apply(items[0])

    async def _apply(self, item: SettledApproval) -> Settlement:
        """Record the truth on the approval; a never-placed order becomes pressable again while it may be."""
        row = item.approval
        agent = not is_monitor_proposal(row)
        thread = row.chat_ref or ""
        waiting = await self.chat.pending_approval(thread) if agent else None
        waits = waiting is not None and waiting.token == row.token
        ctx = TurnContext(user_id=row.owner_user_id, platform=row.platform or "console", chat_ref=thread)
        result: dict[str, Any] = {
            "status": item.status,
            "message": item.message,
            "intent_id": f"{INTENT_PREFIX}{row.token}",
            "realised_pnl": item.realised_pnl,
            "settled": True,
        }
        if item.status == engine_repo.NOT_PLACED:
            if row.expires_at > self.clock() and (not agent or waits):
                async with self.sessions.begin() as session:
                    reopened = await approvals_repo.reopen_approval(session, row.token, result)
                if reopened:
                    text = f"Not placed: {INTERRUPTED}. Press Approve to place it now, or Reject."
                    return Settlement(row, item.status, text, reopened=True)
            async with self.sessions.begin() as session:
                await approvals_repo.expire_consumed(session, row.token, result)
            if waits:
                await self.chat.resume(ctx, row.token, "expired")
            text = f"Not placed: {INTERRUPTED}, and this confirmation can no longer be used."
            return Settlement(row, item.status, text)
        async with self.sessions.begin() as session:
            await approvals_repo.record_result(session, row.token, result)
        if item.status == "unknown":
            return Settlement(row, item.status, CHECKING_TEXT)
        if waits:
            # The conversation still waits for this order: finish it with the recorded truth (nothing is placed).
            await self.chat.resume(ctx, row.token, "approve")
        if item.status == "placed":
            pnl = f" Realised PnL {item.realised_pnl:+.2f} USDT." if item.realised_pnl is not None else ""
            return Settlement(row, item.status, f"Executed (confirmed with the exchange after a restart).{pnl}")
        text = f"The order failed: {item.message}" if item.message else "The order failed."
        return Settlement(row, item.status, text)
