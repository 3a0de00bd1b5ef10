"""The monitor's `Notifier` for the bots: alerts and approval requests become outbox rows, delivered later.

A user is reached in their private chat on the platform they use (on Telegram and Discord DMs the chat is
addressed by the user id). Dedup keys stop a restarted monitor from queueing the same thing twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.messages import Button, Outbound, approval_buttons
from engine.alerts import Alert
from engine.risk.decision import Decision
from storage.models import Approval, User
from storage.repositories import outbox as outbox_repo
from storage.types import utcnow

APPROVAL_TOKEN = "approval_token"


def payload_of(out: Outbound, **extra: Any) -> dict[str, Any]:
    """An outbound message as a JSON outbox payload."""
    return {"text": out.text, "buttons": [{"label": b.label, "data": b.data} for b in out.buttons], **extra}


def outbound_of(payload: dict[str, Any]) -> Outbound:
    """The outbound message of an outbox payload."""
    return Outbound(
        text=str(payload.get("text") or ""),
        buttons=[Button(str(b["label"]), str(b["data"])) for b in payload.get("buttons") or []],
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
        """Queue an alert."""
        text = f"**{alert.title}**\n{alert.message}"
        # The monitor already cools alerts down for an hour; the hour bucket only stops a restart repeating one.
        await self._enqueue(user_id, payload_of(Outbound(text)), f"alert:{user_id}:{alert.key}:{utcnow():%Y%m%d%H}")

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Queue the exact action with [Approve] [Reject] buttons carrying the approval token."""
        expires = f"{approval.expires_at:%H:%M} UTC"
        text = (
            f"**The risk engine proposes:** {approval.summary}\n"
            f"Confidence {100 * decision.confidence:.0f}%. Approve before {expires} or it expires."
        )
        out = Outbound(text, approval_buttons(approval.token))
        payload = payload_of(out, **{APPROVAL_TOKEN: approval.token})
        await self._enqueue(user_id, payload, f"approval:{approval.token}")
