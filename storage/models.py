"""SQLModel tables of the application database. The schema itself is created by Alembic migrations."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from storage.types import UTCDateTime, utcnow


class Platform(StrEnum):
    """Where a user or chat lives."""

    TELEGRAM = "telegram"
    DISCORD = "discord"
    CONSOLE = "console"
    API = "api"


class AccountMode(StrEnum):
    """What the risk engine may do on an exchange account."""

    OFF = "off"
    ADVISE = "advise"
    AUTO = "auto"


class ApprovalStatus(StrEnum):
    """Life cycle of a confirmation button."""

    PENDING = "pending"
    CONSUMED = "consumed"
    REJECTED = "rejected"
    EXPIRED = "expired"


class OutboxStatus(StrEnum):
    """Delivery state of an outgoing message."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, **kw)


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_type=JSON)


def _str(n: int, **kw: Any) -> Any:
    return Field(sa_type=sa.String(n), **kw)


class User(SQLModel, table=True):
    """A person on one platform."""

    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("platform", "platform_user_id", name="uq_users_platform_uid"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = _str(16)
    platform_user_id: str = _str(64)
    display_name: str | None = _str(128, default=None)
    roles: list[str] = _json(list)
    preferences: dict[str, Any] = _json(dict)
    active: bool = Field(default=True, description="False once the user blocked the bot")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Chat(SQLModel, table=True):
    """A private chat, group or channel the bot is in."""

    __tablename__ = "chats"
    __table_args__ = (sa.UniqueConstraint("platform", "platform_chat_id", name="uq_chats_platform_cid"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = _str(16)
    platform_chat_id: str = _str(64)
    kind: str = _str(16, default="private", description="private | group | channel")
    title: str | None = _str(256, default=None)
    settings: dict[str, Any] = _json(dict)
    active: bool = True
    created_at: datetime = _ts()


class ChatBinding(SQLModel, table=True):
    """Links a user to a chat with a role there (member, admin, report subscriber)."""

    __tablename__ = "chat_bindings"
    __table_args__ = (sa.UniqueConstraint("chat_id", "user_id", "role", name="uq_chat_bindings"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(foreign_key="chats.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    role: str = _str(16, default="member")
    created_at: datetime = _ts()


class ExchangeAccount(SQLModel, table=True):
    """A user's exchange connection; credentials are Fernet ciphertext, never plaintext."""

    __tablename__ = "exchange_accounts"
    __table_args__ = (sa.UniqueConstraint("user_id", "label", name="uq_exchange_accounts_label"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    exchange_id: str = _str(32)
    label: str = _str(64)
    credentials_encrypted: str | None = Field(default=None, sa_type=sa.Text)
    mode: str = _str(8, default=AccountMode.ADVISE.value)
    read_only: bool = Field(default=True, description="True until the user arms execution")
    sandbox: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Approval(SQLModel, table=True):
    """A pending human confirmation of one exact order intent."""

    __tablename__ = "approvals"
    __table_args__ = (sa.Index("ix_approvals_status_expires", "status", "expires_at"),)

    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(sa_type=sa.String(64), unique=True)
    owner_user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    account_id: int | None = Field(default=None, foreign_key="exchange_accounts.id", ondelete="SET NULL")
    intent: dict[str, Any] = _json(dict)
    intent_hash: str = _str(64)
    summary: str = Field(default="", sa_type=sa.Text, description="The exact action text shown to the user")
    status: str = _str(16, default=ApprovalStatus.PENDING.value)
    platform: str | None = _str(16, default=None)
    chat_ref: str | None = _str(64, default=None, description="Chat of the button message")
    message_ref: str | None = _str(64, default=None, description="Button message, edited on expiry")
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class AuditLog(SQLModel, table=True):
    """Append-only record of every intent, approval, order request, exchange response and error."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = _ts(index=True)
    kind: str = _str(32, index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL", index=True)
    account_id: int | None = Field(default=None, foreign_key="exchange_accounts.id", ondelete="SET NULL")
    ref: str | None = _str(128, default=None, index=True)
    data: dict[str, Any] = _json(dict)


class AlertSubscription(SQLModel, table=True):
    """A user's or chat's opt-in to alerts or reports, optionally per symbol."""

    __tablename__ = "alert_subscriptions"
    __table_args__ = (sa.UniqueConstraint("user_id", "chat_id", "topic", "symbol", name="uq_alert_subscriptions"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE", index=True)
    chat_id: int | None = Field(default=None, foreign_key="chats.id", ondelete="CASCADE", index=True)
    topic: str = _str(32, description="position | market | technical | onchain | report")
    symbol: str | None = _str(32, default=None)
    min_severity: str = _str(16, default="info")
    quiet_hours: list[int] | None = Field(default=None, sa_type=JSON, description="[start_hour, end_hour] UTC")
    enabled: bool = True
    created_at: datetime = _ts()


class Outbox(SQLModel, table=True):
    """A message waiting for delivery to one recipient; survives restarts."""

    __tablename__ = "outbox"
    __table_args__ = (sa.Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = _str(16)
    recipient: str = _str(64, description="Platform chat id")
    user_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    payload: dict[str, Any] = _json(dict)
    dedup_key: str | None = Field(default=None, sa_type=sa.String(191), unique=True)
    status: str = _str(16, default=OutboxStatus.PENDING.value)
    attempts: int = 0
    next_attempt_at: datetime = _ts()
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _ts()
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A delivery worker claims a row for a lease; another may take it over only once the lease has expired.
    claimed_by: str | None = _str(64, default=None)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InboxStatus(StrEnum):
    """Processing state of a received webhook update."""

    PENDING = "pending"
    DONE = "done"


class InboxUpdate(SQLModel, table=True):
    """A platform update stored before the webhook answers 200: processed once, survives a crash after the answer."""

    __tablename__ = "inbox"
    __table_args__ = (
        sa.UniqueConstraint("platform", "update_id", name="uq_inbox_platform_update"),
        sa.Index("ix_inbox_status", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = _str(16)
    update_id: int = Field(sa_type=sa.BigInteger)
    payload: dict[str, Any] = _json(dict)
    status: str = _str(16, default=InboxStatus.PENDING.value)
    claimed_by: str | None = _str(64, default=None)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = _ts()
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The Bot API call answered in the webhook response body, kept so a retry of the update gets it again.
    reply: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class Report(SQLModel, table=True):
    """A stored market-structure report."""

    __tablename__ = "reports"
    __table_args__ = (sa.Index("ix_reports_symbol_created", "symbol", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    symbol: str = _str(32)
    timeframe: str = _str(8)
    kind: str = _str(16, default="scheduled")
    bias: str | None = _str(16, default=None)
    confidence: float | None = None
    content: dict[str, Any] = _json(dict)
    text: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _ts()
    # The chart travels with the report so /reports, the API and late deliveries show the picture it was sent with.
    chart: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    as_of: datetime | None = Field(default=None, sa_type=UTCDateTime, description="Close time of its last candle")


class ReportSubscription(SQLModel, table=True):
    """A chat's or channel's subscription to scheduled reports or to the daily scan."""

    __tablename__ = "report_subscriptions"
    __table_args__ = (sa.UniqueConstraint("platform", "chat_ref", "kind", name="uq_report_subscriptions"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = _str(16)
    chat_ref: str = _str(64, description="Platform chat id the reports go to")
    is_group: bool = Field(default=False, description="A group or channel (subscribed by one of its admins)")
    kind: str = _str(8, default="report", description="report | scan")
    symbols: list[str] = _json(list)
    timeframe: str = _str(8, default="4h")
    every_hours: int | None = None
    cron: str | None = _str(64, default=None)
    timezone: str = _str(64, default="UTC")
    quiet_start: int | None = Field(default=None, description="Local hour quiet hours start (inclusive)")
    quiet_end: int | None = Field(default=None, description="Local hour quiet hours end (exclusive)")
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    enabled: bool = True
    last_slot: datetime | None = Field(default=None, sa_type=UTCDateTime, description="Latest slot delivered")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ScanRun(SQLModel, table=True):
    """One run of the elite scan: the watchlist, how many setups were looked at, and the top qualifying ones."""

    __tablename__ = "scan_runs"
    __table_args__ = (sa.Index("ix_scan_runs_created", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    watchlist: list[str] = _json(list)
    timeframes: list[str] = _json(list)
    considered: int = 0
    qualified: int = 0
    setups: list[dict[str, Any]] = _json(list)
    text: str = Field(default="", sa_type=sa.Text)
    created_at: datetime = _ts()


class RiskDecision(SQLModel, table=True):
    """One decision of the risk engine (rules, model, or merged) about a position."""

    __tablename__ = "risk_decisions"
    __table_args__ = (sa.Index("ix_risk_decisions_account_created", "account_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int | None = Field(default=None, foreign_key="exchange_accounts.id", ondelete="SET NULL")
    symbol: str = _str(32)
    side: str = _str(8)
    action: str = _str(24)
    confidence: float
    reasoning: str = Field(default="", sa_type=sa.Text)
    close_pct: float | None = None
    new_stop: float | None = None
    source: str = _str(16, default="rules", description="rules | model | merged")
    context: dict[str, Any] = _json(dict)
    created_at: datetime = _ts()


class EngineFlag(SQLModel, table=True):
    """A persisted kill switch: scope "global" or "user:<id>"; survives restarts."""

    __tablename__ = "engine_flags"

    scope: str = Field(sa_type=sa.String(64), primary_key=True)
    killed: bool = False
    reason: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: datetime = _ts()


class Execution(SQLModel, table=True):
    """One executed (or attempted) order intent; the unique intent id makes execution idempotent."""

    __tablename__ = "executions"
    __table_args__ = (sa.Index("ix_executions_account_created", "account_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    intent_id: str = Field(sa_type=sa.String(128), unique=True)
    account_id: int = Field(foreign_key="exchange_accounts.id", ondelete="CASCADE")
    symbol: str = _str(32)
    action: str = _str(24)
    automated: bool = Field(default=False, description="True when the engine acted without a button press")
    close_pct: float | None = None
    intent: dict[str, Any] = _json(dict)
    status: str = _str(16, default="pending", description="pending | done | failed")
    realised_pnl: float | None = None
    result: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _ts()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PositionPlan(SQLModel, table=True):
    """The plan the engine follows for an open position: initial stop (1R), targets and how many were taken, and
    which conditions the monitor already acted on in this position's epoch (it acts once per condition)."""

    __tablename__ = "position_plans"
    __table_args__ = (sa.UniqueConstraint("account_id", "symbol", "side", name="uq_position_plans"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="exchange_accounts.id", ondelete="CASCADE")
    symbol: str = _str(32)
    side: str = _str(8)
    entry: float
    initial_stop: float | None = Field(default=None, description="Stop at entry; defines 1R")
    stop: float | None = Field(default=None, description="Stop the engine watches when the exchange holds none")
    targets: list[float] = _json(list)
    targets_hit: int = 0
    style: str = _str(8, default="swing")
    epoch: int = Field(default=0, description="Bumped for each new position on this account, symbol and side")
    handled: dict[str, str] = _json(dict)  # condition key -> placed | proposed | refused | failed, this epoch
    opened_at: datetime = _ts()
    updated_at: datetime = _ts()


class SignalNonce(SQLModel, table=True):
    """A signal webhook signature already accepted: the same signature again is a replay and is refused."""

    __tablename__ = "signal_nonces"

    signature: str = Field(sa_type=sa.String(128), primary_key=True)
    signed_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = _ts(index=True)


class RateBucket(SQLModel, table=True):
    """One user's inbound-message token bucket, shared by every worker on the database (times from its clock)."""

    __tablename__ = "rate_buckets"

    bucket_key: str = Field(sa_type=sa.String(160), primary_key=True)
    tokens: float = Field(sa_type=sa.Float)
    updated_at: datetime = Field(sa_type=UTCDateTime, index=True)
    refusals: int = Field(default=0)  # refused messages since the last allowed one: the notice goes with the first
