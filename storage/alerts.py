"""Alert tables: users' alert rules (plain words made structure) and when each alert condition last fired."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from storage.types import UTCDateTime, utcnow


class AlertRule(SQLModel, table=True):
    """A user's own alert rule (plain words turned into a structure), pending until its owner confirms it."""

    __tablename__ = "alert_rules"
    __table_args__ = (sa.Index("ix_alert_rules_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    platform: str = Field(sa_type=sa.String(16))
    recipient: str = Field(
        sa_type=sa.String(64), description="Platform chat id the rule was made in; its alerts go there"
    )
    text: str = Field(default="", sa_type=sa.Text, description="What the user wrote")
    spec: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    description: str = Field(default="", sa_type=sa.Text, description="The rule in plain words, as confirmed")
    status: str = Field(sa_type=sa.String(16), default="pending", description="pending | active | off | cancelled")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertFiring(SQLModel, table=True):
    """When a condition last alerted one recipient: the cooldown per (rule, symbol, recipient) across restarts."""

    __tablename__ = "alert_firings"

    key: str = Field(sa_type=sa.String(191), primary_key=True)
    fired_at: datetime = Field(sa_type=UTCDateTime)
