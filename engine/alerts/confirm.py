"""Confirming a user's alert rule and the action buttons of critical position alerts, both through approvals.

A rule waits as `pending` behind an approval row (token, owner, expiry, the rule's id and words as its intent):
[Confirm] consumes the approval and turns the rule on, [Cancel] rejects it; the repository's single conditional
update makes either work once, only for the owner, only before expiry. Critical position alerts offer their
protective actions as monitor proposals (the approval intent the execution engine already carries out).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts.models import Alert
from engine.alerts.rules import RuleSpec
from storage.alerts import AlertRule
from storage.models import Approval, ApprovalStatus
from storage.repositories import alerts as alerts_repo
from storage.repositories import approvals as approvals_repo
from storage.repositories.approvals import Outcome
from storage.types import utcnow

RULE_KIND = "alert_rule"
CONFIRM_TTL = timedelta(minutes=10)
CONFIRM_LABELS = ("Confirm", "Cancel")
ACTION_TTL = timedelta(minutes=15)
NOT_YOURS = "This confirmation belongs to someone else; only they can press it."


def is_rule_confirmation(row: Approval) -> bool:
    """True for the approval behind a rule's [Confirm] [Cancel] buttons (it places no order)."""
    return row.intent.get("kind") == RULE_KIND


async def propose_rule(
    session: AsyncSession,
    *,
    user_id: int,
    platform: str,
    chat_ref: str,
    text: str,
    spec: RuleSpec,
    now: datetime | None = None,
) -> tuple[AlertRule, Approval]:
    """Store the rule as pending and the approval its buttons carry; returns both."""
    now = now or utcnow()
    description = spec.describe()
    rule = await alerts_repo.add_rule(
        session,
        user_id=user_id,
        platform=platform,
        recipient=chat_ref,
        text=text,
        spec=spec.model_dump(),
        description=description,
        now=now,
    )
    intent = {"kind": RULE_KIND, "rule_id": rule.id, "spec": spec.model_dump()}
    approval = await approvals_repo.create_approval(
        session,
        owner_user_id=user_id,
        intent=intent,
        summary=f"Alert #{rule.id}: {description}",
        ttl=CONFIRM_TTL,
        platform=platform,
        chat_ref=chat_ref,
        now=now,
    )
    return rule, approval


def refusal(row: Approval, now: datetime) -> str | None:
    """Why a press of a rule's buttons cannot work any more (None while it may)."""
    if row.status == ApprovalStatus.CONSUMED.value:
        return "Already confirmed; the alert is on."
    if row.status == ApprovalStatus.REJECTED.value:
        return "Already cancelled; no alert was set."
    if row.status == ApprovalStatus.EXPIRED.value or row.expires_at <= now:
        return "This confirmation has expired; no alert was set. Send /alert again."
    return None


async def decide_rule(
    sessions: async_sessionmaker[AsyncSession], row: Approval, user_id: int, confirm: bool, now: datetime
) -> str:
    """Consume (confirm) or reject the rule's approval once and turn the rule on or cancel it."""
    rule_id = int(row.intent["rule_id"])
    async with sessions.begin() as session:
        fn = approvals_repo.consume_approval if confirm else approvals_repo.reject_approval
        decision = await fn(session, row.token, user_id, now=now)
        if decision.outcome is Outcome.NOT_OWNER:
            return NOT_YOURS
        if decision.outcome is not Outcome.OK or decision.approval is None:
            fresh = decision.approval or row
            return refusal(fresh, now) or "This button is no longer valid."
        # The outcome is recorded with the flip, so the press counts as settled (there is no order to look up).
        await approvals_repo.record_result(session, row.token, {"status": "done", "rule_id": rule_id})
        target = alerts_repo.ACTIVE if confirm else alerts_repo.CANCELLED
        moved = await alerts_repo.move_rule(
            session, rule_id, user_id, to=target, only_from=(alerts_repo.PENDING,), now=now
        )
    if not moved:
        return "This rule was changed meanwhile; see /alerts."
    if confirm:
        return f"Alert #{rule_id} is on. It is checked every few minutes; /alert off {rule_id} turns it off."
    return "Cancelled: no alert was set."


async def action_buttons(
    session: AsyncSession, user_id: int, alert: Alert, *, ttl: timedelta = ACTION_TTL, now: datetime | None = None
) -> list[tuple[str, str]]:
    """(label, approval token) per protective action of a critical position alert, each a monitor proposal."""
    if alert.severity != "critical" or not alert.actions or alert.position is None:
        return []
    out: list[tuple[str, str]] = []
    where: dict[str, Any] = alert.position
    for action in alert.actions:
        intent = {
            "symbol": where["symbol"],
            "side": where["side"],
            "action": action.action,
            "close_pct": action.close_pct,
            "new_stop": None,
            "account_id": where["account_id"],
            "size": where["size"],
        }
        approval = await approvals_repo.create_approval(
            session,
            owner_user_id=user_id,
            intent=intent,
            summary=action.summary,
            ttl=ttl,
            account_id=where["account_id"],
            now=now,
        )
        out.append((action.label, approval.token))
    return out
