"""The monitor's `Notifier` for the bots: alerts and approval requests become outbox rows, delivered later.

A user is reached in their private chat on the platform they use (on Telegram and Discord DMs the chat is
addressed by the user id). Dedup keys stop a restarted monitor from queueing the same thing twice.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.messages import Button, Outbound, approval_buttons
from engine.alerts import Alert
from engine.alerts.confirm import action_buttons
from engine.alerts.routing import delivery_time, payload
from engine.reports.service import PHOTO_KEY
from engine.risk.decision import Decision
from storage.models import Approval, User
from storage.repositories import alerts as alerts_repo
from storage.repositories import outbox as outbox_repo
from storage.types import utcnow

APPROVAL_TOKEN = "approval_token"


class _AlreadyQueued(Exception):
    """The alert was queued before (same dedup key): nothing of this attempt is kept."""


def payload_of(out: Outbound, **extra: Any) -> dict[str, Any]:
    """An outbound message as a JSON outbox payload."""
    return {"text": out.text, "buttons": [{"label": b.label, "data": b.data} for b in out.buttons], **extra}


def outbound_of(payload: dict[str, Any]) -> Outbound:
    """The outbound message of an outbox payload (a picture travels base64-encoded under `PHOTO_KEY`)."""
    photo = payload.get(PHOTO_KEY)
    return Outbound(
        text=str(payload.get("text") or ""),
        buttons=[Button(str(b["label"]), str(b["data"])) for b in payload.get("buttons") or []],
        photo=base64.b64decode(photo) if isinstance(photo, str) else None,
    )


class OutboxNotifier:
    """Queues the monitor's alerts and approval requests for delivery to each user's private chat."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], platforms: frozenset[str]) -> None:
        self.sessions = sessions
        self.platforms = platforms  # platforms with a running sender; others cannot be reached

    async def _enqueue(self, user_id: int, payload: dict[str, Any], dedup_key: str) -> bool:
        async with self.sessions.begin() as session:
            user = await session.get(User, user_id)
            if user is None or not user.active or user.platform not in self.platforms:
                return False
            return await outbox_repo.enqueue(
                session,
                platform=user.platform,
                recipient=user.platform_user_id,
                payload=payload,
                dedup_key=dedup_key,
                user_id=user_id,
            )

    async def send_alert(self, user_id: int, alert: Alert) -> None:
        """Queue an alert if the user opted in to its topic: held over their quiet hours unless critical; a
        critical position alert carries its protective actions as approval buttons."""
        now = utcnow()
        # The monitor already cools alerts down for an hour; the hour bucket only stops a restart repeating one.
        dedup_key = f"alert:{user_id}:{alert.key}:{now:%Y%m%d%H}"
        try:
            async with self.sessions.begin() as session:
                recipient = await alerts_repo.user_recipient(session, user_id, alert.type)
                if recipient is None or recipient.platform not in self.platforms:
                    return
                when = delivery_time(recipient, alert, now)
                if when is None:
                    return
                tokens = await action_buttons(session, user_id, alert, now=now)
                buttons = [(label, approval_buttons(token)[0].data) for label, token in tokens]
                if not await alerts_repo.enqueue_alert(
                    session, recipient, payload(alert.text, buttons), dedup_key, deliver_at=when, now=now
                ):
                    raise _AlreadyQueued  # roll back the approvals made for a message that is not sent
        except _AlreadyQueued:
            return

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Queue the exact action with [Approve] [Reject] buttons carrying the approval token."""
        expires = f"{approval.expires_at:%H:%M} UTC"
        # The figure the guards compare: the backtest-measured one where the decision has it, else its own.
        shown = decision.confidence if decision.calibrated_confidence is None else decision.calibrated_confidence
        text = (
            f"**The risk engine proposes:** {approval.summary}\n"
            f"Confidence {100 * shown:.0f}%. Approve before {expires} or it expires."
        )
        out = Outbound(text, approval_buttons(approval.token))
        payload = payload_of(out, **{APPROVAL_TOKEN: approval.token})
        await self._enqueue(user_id, payload, f"approval:{approval.token}")
