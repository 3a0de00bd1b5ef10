"""The alert every rule produces (SPEC §6): type, severity, asset, title, message, suggested actions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

AlertType = Literal["position", "market", "technical", "onchain"]
Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}


class ProposedAction(BaseModel):
    """A protective action a critical position alert offers as a button (a monitor proposal once pressed)."""

    label: str
    action: str = Field(description="Risk action, e.g. EXIT_FULL or REDUCE_SIZE")
    close_pct: float | None = None
    summary: str = Field(description="The exact action text the approval shows")


class Alert(BaseModel):
    """One alert; `key` identifies the condition for deduplication (same key → same condition)."""

    key: str
    type: AlertType
    severity: Severity
    asset: str
    title: str
    message: str
    suggested_actions: list[str] = Field(default_factory=list)
    # Critical position alerts: the position they are about and the actions offered as approval buttons.
    position: dict[str, Any] | None = None
    actions: list[ProposedAction] = Field(default_factory=list)

    @property
    def text(self) -> str:
        """The alert as a chat message (Markdown)."""
        return f"**{self.title}**\n{self.message}"
