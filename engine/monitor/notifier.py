"""How the monitor reaches people: the bots implement `Notifier`; tests use the recording one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.alerts import Alert
from engine.risk.decision import Decision
from storage.models import Approval


class Notifier(Protocol):
    """Delivers alerts and approval requests to a user."""

    async def send_alert(self, user_id: int, alert: Alert) -> None:
        """Tell the user about a condition."""
        ...

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Show the exact action with [Approve] [Reject] buttons whose payload is the approval token."""
        ...


@dataclass
class RecordingNotifier:
    """Keeps everything it was asked to deliver (tests, the console)."""

    alerts: list[tuple[int, Alert]] = field(default_factory=list)
    approvals: list[tuple[int, Approval, Decision]] = field(default_factory=list)

    async def send_alert(self, user_id: int, alert: Alert) -> None:
        """Record the alert."""
        self.alerts.append((user_id, alert))

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Record the approval request."""
        self.approvals.append((user_id, approval, decision))


@dataclass
class PrintingNotifier:
    """Writes alerts and approval requests to a text stream (the operator's terminal)."""

    write: Callable[[str], None]
    # With the database, users are printed as people name them (telegram:123, console:local), not by row id.
    sessions: Any = None

    async def _who(self, user_id: int) -> str:
        if self.sessions is None:
            return f"user {user_id}"
        from storage.repositories.users import user_refs

        async with self.sessions() as session:
            return (await user_refs(session, [user_id])).get(user_id, f"user {user_id}")

    async def send_alert(self, user_id: int, alert: Alert) -> None:
        """Print the alert."""
        self.write(f"[{alert.severity.upper()}] {await self._who(user_id)}: {alert.title} — {alert.message}")

    async def request_approval(self, user_id: int, approval: Approval, decision: Decision) -> None:
        """Print the proposal with its token (approve it from a channel, or let it expire)."""
        self.write(
            f"[PROPOSAL] {await self._who(user_id)}: {approval.summary} (token {approval.token[:6]}…, "
            f"expires {approval.expires_at:%H:%M:%S} UTC)"
        )
