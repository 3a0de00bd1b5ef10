"""Place decisions on an account: one lock per account, guards read fresh, idempotent by intent id, audited."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.guards import GuardLimits, GuardState, check_approved, check_automated
from engine.risk.decision import STOP_ACTIONS, Decision
from storage.models import ExchangeAccount
from storage.repositories import audit
from storage.repositories import engine as engine_repo
from storage.types import utcnow
from tools.exchange.base import Account
from tools.exchange.errors import AccountError
from tools.exchange.models import IntentKind, OrderIntent, PlaceResult, Position, PositionSide

log = logging.getLogger(__name__)


@dataclass
class ExecutionOutcome:
    """What happened to one decision: placed, refused by a guard, failed at the exchange, or a duplicate."""

    status: str  # placed | refused | failed | duplicate | nothing_to_do
    intent_id: str
    reasons: list[str] = field(default_factory=list)
    message: str = ""
    result: PlaceResult | None = None
    realised_pnl: float | None = None

    @property
    def placed(self) -> bool:
        """True when an order went out in this call."""
        return self.status == "placed"


def intent_for(
    decision: Decision, position: Position, *, intent_id: str, account_ref: str, close_pct: float | None = None
) -> OrderIntent | None:
    """The order intent that carries out `decision` on `position` (None for HOLD)."""
    if decision.closes:
        pct = close_pct if close_pct is not None else decision.effective_close_pct
        return OrderIntent(
            intent_id=intent_id,
            account_ref=account_ref,
            symbol=position.symbol,
            kind=IntentKind.CLOSE,
            side=position.side.closing_side,
            close_pct=Decimal(str(round(pct, 4))),
            reduce_only=True,
        )
    if decision.action in STOP_ACTIONS and decision.new_stop is not None:
        return OrderIntent(
            intent_id=intent_id,
            account_ref=account_ref,
            symbol=position.symbol,
            kind=IntentKind.SET_STOP,
            side=position.side.closing_side,
            stop_price=Decimal(str(decision.new_stop)),
            reduce_only=True,
        )
    return None


def realised_pnl_of(position: Position, result: PlaceResult) -> float | None:
    """Realised PnL of a close from its fills (entry vs average fill, minus fees)."""
    d = 1 if position.side is PositionSide.LONG else -1
    pnl, any_fill = Decimal(0), False
    for order in result.orders:
        if order.filled and order.average:
            any_fill = True
            pnl += d * (order.average - position.entry_price) * order.filled - (order.fee or 0)
    return float(pnl) if any_fill else None


class Executor:
    """Carries out decisions on accounts; the only place in the engine that places orders."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], limits: GuardLimits, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.sessions = sessions
        self.limits = limits
        self.clock = clock
        self._locks: dict[int, asyncio.Lock] = {}

    def lock_for(self, account_id: int) -> asyncio.Lock:
        """The per-account lock: two actions on one account never interleave."""
        return self._locks.setdefault(account_id, asyncio.Lock())

    async def guard_state(self, row: ExchangeAccount) -> GuardState:
        """Read the guards' inputs fresh from the database."""
        now = self.clock()
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        assert row.id is not None
        async with self.sessions() as session:
            fresh = await session.get(ExchangeAccount, row.id)
            switches = await engine_repo.kill_switches(session, row.user_id)
            return GuardState(
                mode=(fresh or row).mode,
                armed=not (fresh or row).read_only,
                kill_switches=tuple(f.scope for f in switches),
                actions_last_hour=await engine_repo.automated_actions_since(session, row.id, now - timedelta(hours=1)),
                realised_pnl_today=await engine_repo.realised_pnl_since(session, row.id, day_start),
            )

    async def execute(
        self,
        *,
        row: ExchangeAccount,
        account: Account,
        position: Position,
        decision: Decision,
        intent_id: str,
        automated: bool,
    ) -> ExecutionOutcome:
        """Place `decision` once: guards, claim the intent id, place, record. Never raises AccountError."""
        assert row.id is not None
        async with self.lock_for(row.id):
            state = await self.guard_state(row)
            if automated:
                verdict = check_automated(decision, state, self.limits)
            else:
                verdict = check_approved(state, decision.effective_close_pct if decision.closes else None)
            if not verdict.allowed:
                await self._audit(
                    row, "guard_refused", intent_id, {"action": decision.action, "reasons": verdict.reasons}
                )
                return ExecutionOutcome("refused", intent_id, verdict.reasons, "; ".join(verdict.reasons))
            intent = intent_for(
                decision, position, intent_id=intent_id, account_ref=f"account:{row.id}", close_pct=verdict.close_pct
            )
            if intent is None:
                return ExecutionOutcome("nothing_to_do", intent_id, message=f"{decision.action} needs no order")
            return await self._place(row, account, position, intent, decision.action, decision.model_dump(), automated)

    async def execute_approved_intent(
        self, *, row: ExchangeAccount, account: Account, intent: OrderIntent, position: Position | None, action: str
    ) -> ExecutionOutcome:
        """Place an intent a person approved with a button (manual actions: close, set stop/TP, breakeven)."""
        assert row.id is not None
        async with self.lock_for(row.id):
            verdict = check_approved(await self.guard_state(row))
            if not verdict.allowed:
                await self._audit(
                    row, "guard_refused", intent.intent_id, {"action": action, "reasons": verdict.reasons}
                )
                return ExecutionOutcome("refused", intent.intent_id, verdict.reasons, verdict.reasons[0])
            return await self._place(row, account, position, intent, action, {"action": action}, automated=False)

    async def _place(
        self,
        row: ExchangeAccount,
        account: Account,
        position: Position | None,
        intent: OrderIntent,
        action: str,
        decision: dict[str, Any],
        automated: bool,
    ) -> ExecutionOutcome:
        intent_json = intent.model_dump(mode="json")
        async with self.sessions.begin() as session:
            claimed = await engine_repo.claim_execution(
                session,
                intent_id=intent.intent_id,
                account_id=row.id,
                symbol=intent.symbol,
                action=action,
                automated=automated,
                close_pct=float(intent.close_pct) if intent.close_pct is not None else None,
                intent=intent_json,
                created_at=self.clock(),
            )
            if claimed:
                await audit.record(
                    session,
                    "order_request",
                    user_id=row.user_id,
                    account_id=row.id,
                    ref=intent.intent_id,
                    data={"intent": intent_json, "decision": decision},
                )
        if not claimed:
            async with self.sessions() as session:
                previous = await engine_repo.get_execution(session, intent.intent_id)
            status = previous.status if previous else "unknown"
            return ExecutionOutcome("duplicate", intent.intent_id, message=f"already executed ({status})")
        try:
            result = await account.place(intent)
        except AccountError as exc:
            await self._finish(row, intent.intent_id, status="failed", error=exc.user_message)
            return ExecutionOutcome("failed", intent.intent_id, [exc.user_message], exc.user_message)
        except Exception as exc:  # an unknown failure must still be recorded, then surfaced
            log.exception("order placement crashed for %s", intent.intent_id)
            await self._finish(row, intent.intent_id, status="failed", error=f"{type(exc).__name__}")
            return ExecutionOutcome("failed", intent.intent_id, ["unexpected error"], "The order could not be placed.")
        pnl = realised_pnl_of(position, result) if position is not None and intent.kind is IntentKind.CLOSE else None
        await self._finish(row, intent.intent_id, status="done", result=result.model_dump(mode="json"), pnl=pnl)
        return ExecutionOutcome("placed", intent.intent_id, message=result.message, result=result, realised_pnl=pnl)

    async def _finish(
        self,
        row: ExchangeAccount,
        intent_id: str,
        *,
        status: str,
        result: dict[str, Any] | None = None,
        pnl: float | None = None,
        error: str | None = None,
    ) -> None:
        async with self.sessions.begin() as session:
            await engine_repo.finish_execution(
                session, intent_id, status=status, result=result, realised_pnl=pnl, error=error
            )
            kind = "exchange_response" if status == "done" else "error"
            await audit.record(
                session,
                kind,
                user_id=row.user_id,
                account_id=row.id,
                ref=intent_id,
                data={"result": result, "realised_pnl": pnl, "error": error},
            )

    async def _audit(self, row: ExchangeAccount, kind: str, ref: str, data: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await audit.record(session, kind, user_id=row.user_id, account_id=row.id, ref=ref, data=data)
