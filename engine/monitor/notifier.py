"""How the monitor reaches people: the bots implement `Notifier`; tests use the recording one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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
