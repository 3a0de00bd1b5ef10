"""Signal webhook `POST /hooks/signal`: an authenticated TradingView-style signal → analysis → an alert to the
symbol's subscribers through the outbox.

Authentication (both need the timestamp header, unix seconds, at most 5 minutes old):
- `X-Bastion-Signature: sha256=<hex>` = HMAC-SHA256(key=BASTION_API__SIGNAL_SECRET, msg=f"{timestamp}." + body);
- or, for senders that cannot sign, `X-Bastion-Secret: <the secret>` (compared in constant time).
The HMAC of timestamp + body (computed here in both modes) is stored once accepted: the same request again is a
replay and is refused, and storing it in the same transaction as the outbox rows means a signal is either
fully delivered to the outbox or may be sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from bot.api.app import BodyRefused, parse_json, read_body
from bot.api.metrics import Metrics
from storage.models import AlertSubscription, Chat, Outbox, OutboxStatus, User
from storage.repositories import signal_nonces
from storage.repositories._dml import table_of
from storage.repositories._upsert import insert_ignore_many
from storage.types import utcnow
from tools.market.base import UnknownSymbolError
from tools.market.symbols import parse_symbol

log = logging.getLogger(__name__)
SIGNAL_PATH = "/hooks/signal"
SIGNATURE_HEADER = "X-Bastion-Signature"
TIMESTAMP_HEADER = "X-Bastion-Timestamp"
SECRET_HEADER = "X-Bastion-Secret"
MAX_AGE_S = 300  # older timestamps are refused; nonces older than this can be pruned
MAX_SKEW_S = 30  # a sender's clock slightly ahead of ours is tolerated, a future timestamp is not
SIGNAL_MAX_BYTES = 16 * 1024  # a signal is a few hundred bytes
SIGNAL_TOPICS = ("technical", "market")
_TV_TIMEFRAMES = {"1": "1m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "240": "4h", "D": "1d", "1D": "1d"}
_TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
_TV_TICKER = re.compile(r"^[A-Z0-9_]+:([A-Z0-9.]+)$")  # BINANCE:BTCUSDT.P

Analyse = Callable[[str, str], Awaitable[str]]


class SignalPayload(BaseModel):
    """A TradingView-style alert body."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=40, description="BTC, BTCUSDT, BTC/USDT or BINANCE:BTCUSDT.P")
    side: Literal["buy", "sell", "long", "short"]
    price: float = Field(gt=0, description="price when the signal fired")
    timeframe: str = Field(description="15m, 1h, 4h, 1d (TradingView's 15, 60, 240, D too)")
    message: str = Field(default="", max_length=500)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        raw = value.strip().upper()
        tv = _TV_TICKER.match(raw)
        try:
            return parse_symbol(tv.group(1) if tv else raw).unified
        except UnknownSymbolError:
            raise ValueError(f"{value!r} is not a symbol (e.g. BTC, BTCUSDT, BINANCE:BTCUSDT.P)") from None

    @field_validator("price")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("price must be a finite number")
        return value

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        tf = _TV_TIMEFRAMES.get(value.strip(), value.strip().lower())
        if tf not in _TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(_TIMEFRAMES)}")
        return tf

    @property
    def direction(self) -> str:
        """long or short."""
        return "long" if self.side in ("buy", "long") else "short"


# The analysis runs on the timeframes the structure engine keeps; shorter signals are read on the nearest one.
_ANALYSIS_TF = {"1m": "15m", "5m": "15m", "15m": "15m", "30m": "1h", "1h": "1h", "4h": "4h", "1d": "1d"}


def toolkit_analysis(toolkit: Any) -> Analyse:
    """The deterministic /analyze answer (levels, setup, scenarios, verdict) over the agent tools: no model."""
    from agents.offline.intents import Request as Ask
    from agents.offline.model import answer_directly
    from tools.agent_tools.base import ToolContext

    async def analyse(symbol: str, timeframe: str) -> str:
        await toolkit.deps.market.ticker(symbol)  # UnknownSymbolError for a symbol the market does not list
        ask = Ask("analyze", symbol=symbol, timeframe=_ANALYSIS_TF.get(timeframe, "1h"))
        text, _ = await answer_directly(toolkit, ToolContext(user_id=0), ask)
        return text

    return analyse


class SignalAccepted(BaseModel):
    """The signal was analysed and queued for the symbol's subscribers."""

    accepted: bool = True
    symbol: str
    recipients: int = Field(description="outbox rows queued (one per subscribed user or chat)")


class Problem(BaseModel):
    """A refused request: what was wrong, in plain words."""

    detail: str


class SignalRefused(Exception):
    """A signal request refused with an HTTP status, a metrics reason and a message for the integrator."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `timestamp` + "." + body: what a sender puts after `sha256=`."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(headers: Any, body: bytes, secret: str, now: float) -> tuple[str, datetime]:
    """The request's HMAC (its replay key) and signing time; SignalRefused when unauthenticated or stale."""
    stamp = headers.get(TIMESTAMP_HEADER, "")
    if not stamp.isdigit():
        raise SignalRefused(401, "timestamp", f"{TIMESTAMP_HEADER} (unix seconds) is required")
    age = now - int(stamp)
    if age > MAX_AGE_S:
        raise SignalRefused(401, "stale", f"timestamp is {age:.0f} s old; signals older than {MAX_AGE_S} s are refused")
    if age < -MAX_SKEW_S:
        raise SignalRefused(401, "stale", "timestamp is in the future; check the sender's clock")
    expected = sign(secret, stamp, body)
    given_sig = headers.get(SIGNATURE_HEADER)
    given_secret = headers.get(SECRET_HEADER)
    if given_sig is not None:
        if not hmac.compare_digest(given_sig.removeprefix("sha256=").strip().lower().encode(), expected.encode()):
            raise SignalRefused(401, "signature", "signature does not match timestamp + body")
    elif given_secret is not None:
        if not hmac.compare_digest(given_secret.encode(), secret.encode()):
            raise SignalRefused(401, "secret", "shared secret does not match")
    else:
        raise SignalRefused(401, "signature", f"{SIGNATURE_HEADER} or {SECRET_HEADER} is required")
    return expected, datetime.fromtimestamp(int(stamp), UTC)


def alert_text(signal: SignalPayload, analysis: str) -> str:
    """The alert subscribers receive: the signal as sent, then Bastion's own analysis of the symbol."""
    head = f"**Signal: {signal.symbol} {signal.direction.upper()} at {signal.price:g} ({signal.timeframe})**"
    note = f"\n{signal.message}" if signal.message else ""
    return f"{head}{note}\n\n{analysis}"


def quiet_until(hours: list[int] | None, now: datetime) -> datetime | None:
    """End of the subscriber's quiet hours when `now` falls inside them ([start, end) UTC hours), else None."""
    if not hours or len(hours) != 2:
        return None
    start, end = hours
    h = now.hour
    inside = start <= h < end if start <= end else (h >= start or h < end)
    if not inside:
        return None
    until = now.replace(hour=end % 24, minute=0, second=0, microsecond=0)
    return until if until > now else until + timedelta(days=1)


@dataclass
class SignalService:
    """Turns an authenticated signal into outbox rows for the symbol's subscribers."""

    sessions: async_sessionmaker[AsyncSession]
    analyse: Analyse
    platforms: frozenset[str]  # platforms with a running sender

    async def accept(self, signal: SignalPayload, replay_key: str, signed_at: datetime) -> int:
        """Analyse, then in one transaction record the replay key and queue one alert per subscriber."""
        base = signal.symbol.split("/")[0]
        try:
            analysis = await self.analyse(signal.symbol, signal.timeframe)
        except UnknownSymbolError as exc:
            raise SignalRefused(422, "symbol", exc.user_message) from None
        except Exception:
            log.warning("signal analysis of %s failed", signal.symbol, exc_info=True)
            analysis = "Analysis not available right now."
        text = alert_text(signal, analysis)
        now = utcnow()
        async with self.sessions.begin() as session:
            if not await signal_nonces.claim(session, replay_key, signed_at, now):
                raise SignalRefused(409, "replay", "this signal (same timestamp and body) was already accepted")
            rows = []
            for platform, recipient, user_id, quiet in await self._recipients(session, base, signal.symbol):
                due = quiet_until(quiet, now) or now
                rows.append(
                    {
                        "platform": platform,
                        "recipient": recipient,
                        "user_id": user_id,
                        "payload": {"text": text, "buttons": []},
                        "dedup_key": f"signal:{replay_key[:40]}:{platform}:{recipient}",
                        "status": OutboxStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": due,
                        "created_at": now,
                    }
                )
            # One statement for every subscriber: a popular symbol's fan-out is not one round trip per person.
            return await insert_ignore_many(session, table_of(Outbox), rows)

    async def _recipients(
        self, session: AsyncSession, base: str, unified: str
    ) -> list[tuple[str, str, int | None, list[int] | None]]:
        rows = (
            await session.execute(
                select(AlertSubscription, User, Chat)
                .outerjoin(User, col(AlertSubscription.user_id) == col(User.id))
                .outerjoin(Chat, col(AlertSubscription.chat_id) == col(Chat.id))
                .where(
                    col(AlertSubscription.enabled),
                    col(AlertSubscription.topic).in_(SIGNAL_TOPICS),
                    col(AlertSubscription.min_severity) == "info",
                    or_(col(AlertSubscription.symbol).in_((base, unified)), col(AlertSubscription.symbol).is_(None)),
                )
                .order_by(col(AlertSubscription.id))
            )
        ).all()
        out: dict[tuple[str, str], tuple[str, str, int | None, list[int] | None]] = {}
        for sub, user, chat in rows:
            if chat is not None and chat.active and chat.platform in self.platforms:
                key = (chat.platform, chat.platform_chat_id)
                out.setdefault(key, (*key, None, sub.quiet_hours))
            elif user is not None and user.active and user.platform in self.platforms:
                key = (user.platform, user.platform_user_id)
                out.setdefault(key, (*key, user.id, sub.quiet_hours))
        return list(out.values())  # a user subscribed twice (BTC and all symbols) hears it once


_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": what}
    for code, what in (
        (400, "body is not JSON, or nested too deep"),
        (401, "missing or wrong signature / secret, or a timestamp older than 5 minutes"),
        (409, "replayed: this exact signal was already accepted"),
        (413, "body over the size limit"),
        (422, "payload does not match the signal schema, or an unknown symbol"),
        (503, "signal webhook not configured (no BASTION_API__SIGNAL_SECRET)"),
    )
}


def signals_router(
    service: SignalService | None,
    secret: str | None,
    metrics: Metrics | None = None,
    max_bytes: int = SIGNAL_MAX_BYTES,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The `POST /hooks/signal` route; without a secret it answers 503 (never accepts unauthenticated signals)."""
    router = APIRouter(tags=["signals"])

    def count(outcome: str) -> None:
        if metrics is not None:
            metrics.signals.labels(outcome=outcome).inc()

    @router.post(
        SIGNAL_PATH,
        status_code=202,
        response_model=SignalAccepted,
        responses=_REFUSALS,
        summary="Post a trading signal (HMAC-signed or with the shared secret)",
        openapi_extra={
            "parameters": [
                {"name": TIMESTAMP_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
                {"name": SIGNATURE_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
                {"name": SECRET_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SignalPayload.model_json_schema()}},
            },
        },
    )
    async def post_signal(request: Request) -> Any:
        """Verify, validate, analyse the symbol and queue an alert to its subscribers."""
        try:
            if service is None or not secret:
                raise SignalRefused(503, "disabled", "signal webhook not configured (set BASTION_API__SIGNAL_SECRET)")
            try:
                # The signature covers the exact bytes received: verified before anything parses them.
                raw = await read_body(request, max_bytes)
                replay_key, signed_at = verify(request.headers, raw, secret, clock())
                data = parse_json(raw)
            except BodyRefused as exc:
                raise SignalRefused(exc.status, exc.reason, exc.detail) from None
            try:
                signal = SignalPayload.model_validate(data)
            except ValidationError as exc:
                raise SignalRefused(422, "schema", _plain(exc)) from None
            queued = await service.accept(signal, replay_key, signed_at)
        except SignalRefused as refused:
            count(refused.reason)
            return JSONResponse({"detail": refused.detail}, status_code=refused.status)
        count("accepted")
        return SignalAccepted(symbol=signal.symbol, recipients=queued)

    return router


def _plain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)
