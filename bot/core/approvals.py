"""Approvals for every channel: check a press, consume or reject it once, carry it out, expire old ones.

Two kinds of approval exist: the analyst graph's (an order proposal waiting in a conversation, resumed through
`AnalystChat.decide`) and the position monitor's (a risk action proposed in advise mode, carried out by
`engine.execution.proposals`). Either way the atomic pending → consumed flip in the repository is the guard:
of any number of presses, in any number of processes, exactly one places the order.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.runner import AnalystChat
from agents.state import TurnContext
from engine.execution.executor import Executor
from engine.execution.proposals import OpenAccount, execute_proposal, is_monitor_proposal
from storage.models import Approval, ApprovalStatus
from storage.repositories import approvals as approvals_repo
from storage.repositories.approvals import Outcome
from storage.types import utcnow

NOT_VALID = "This button is no longer valid."
NOT_YOURS = "This confirmation belongs to someone else; only they can press it."
EXPIRED_TEXT = "Expired: no order was placed."


def already_text(status: str) -> str:
    """Why a decided approval cannot be pressed again."""
    if status == ApprovalStatus.CONSUMED.value:
        return "Already confirmed; nothing more will be placed."
    if status == ApprovalStatus.EXPIRED.value:
        return "This confirmation has expired; no order was placed."
    return "Already rejected; no order was placed."


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
        # Weak values: a lock lives only while a press holds or awaits it, so buttons never pile up here.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, token: str) -> asyncio.Lock:
        """Serialises presses of one button within this process (the database guards across processes)."""
        lock = self._locks.get(token)
        if lock is None:
            lock = self._locks[token] = asyncio.Lock()
        return lock

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
        if row.status != ApprovalStatus.PENDING.value:
            return already_text(row.status)
        if row.expires_at <= self.clock():
            return already_text(ApprovalStatus.EXPIRED.value)
        return None

    async def decide(self, ctx: TurnContext, row: Approval, approve: bool) -> str:
        """Consume (approve) or reject the approval once and carry it out; returns the outcome for the user."""
        token = row.token
        if not is_monitor_proposal(row):
            return (await self.chat.decide(ctx, token, approve)).text
        async with self.sessions.begin() as session:
            fn = approvals_repo.consume_approval if approve else approvals_repo.reject_approval
            decision = await fn(session, token, ctx.user_id, now=self.clock())
        if decision.outcome is Outcome.NOT_OWNER:
            return NOT_YOURS
        if decision.outcome is not Outcome.OK or decision.approval is None:
            status = decision.approval.status if decision.approval else ApprovalStatus.REJECTED.value
            return already_text(status)
        if not approve:
            return "Rejected: no order was placed."
        outcome = await execute_proposal(self.executor, self.sessions, self.open_account, decision.approval)
        if outcome.placed:
            return f"Executed.{(' ' + outcome.message) if outcome.message else ''}"
        if outcome.status == "duplicate":
            return "Already executed earlier; no second order was placed."
        return f"Not executed: {outcome.message or outcome.status}."

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
