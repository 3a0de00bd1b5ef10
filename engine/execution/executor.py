"""Place decisions on an account: one lock per account, guards read fresh, idempotent by intent id, audited.

An execution row is claimed (pending) before the order goes out and finished after. A process killed between
the two leaves it pending: `reconcile` asks the account for the intent's client order id and finishes it as
placed or not placed; a not-placed intent may be claimed and placed again, still once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.access import AccessPolicy, Permission, refusal
from engine.execution.guards import GuardLimits, GuardRefused, GuardState, Recheck, check_approved, check_automated
from engine.risk.decision import STOP_ACTIONS, Decision
from storage.keyed_lock import KeyedLock
from storage.models import ExchangeAccount, Execution
from storage.repositories import audit
from storage.repositories import engine as engine_repo
from storage.types import utcnow
from tools.exchange.base import Account
from tools.exchange.errors import AccountError, OrderStatusUnknownError
from tools.exchange.models import IntentKind, OrderIntent, PlaceResult, Position, PositionSide, qty_text

log = logging.getLogger(__name__)
# A pending execution younger than this may still be in flight in another process: it is not looked up yet.
IN_FLIGHT = timedelta(seconds=120)
# How far the live position may differ from the size an approval showed before the press is refused.
SIZE_TOLERANCE = Decimal("0.005")
CHECKING = "checking with the exchange whether the earlier attempt placed it; nothing more will be placed until then"


@dataclass
class ExecutionOutcome:
    """What happened to one decision: placed, refused by a guard, failed at the exchange, or a duplicate."""

    # placed | refused | failed | duplicate | nothing_to_do | not_placed (settled: never reached the exchange)
    # | unknown (an earlier attempt's outcome cannot be known yet)
    status: str
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
        self,
        sessions: async_sessionmaker[AsyncSession],
        limits: GuardLimits,
        clock: Callable[[], datetime] = utcnow,
        access: AccessPolicy | None = None,
        in_flight: timedelta = IN_FLIGHT,
    ) -> None:
        self.sessions = sessions
        self.limits = limits
        self.clock = clock
        # None only where no permissions exist (engine tests, the backtest); `bastion` always wires the policy.
        self.access = access
        self.in_flight = in_flight
        # Per account: two actions on one account never interleave (an entry lives only while held or awaited).
        self.locks: KeyedLock[int] = KeyedLock()

    async def guard_state(self, row: ExchangeAccount) -> GuardState:
        """Read the guards' inputs fresh from the database."""
        async with self.sessions() as session:
            return await self._read_guard_state(session, row)

    async def _read_guard_state(self, session: AsyncSession, row: ExchangeAccount, *, lock: bool = False) -> GuardState:
        # With `lock`, the account row is locked until the transaction ends: every claim on the account, in any
        # process, reads the counters after the previous claim committed. FOR NO KEY UPDATE, not FOR UPDATE, so the
        # foreign-key checks of other transactions' audit and execution rows (FOR KEY SHARE) never wait on it.
        now = self.clock()
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        assert row.id is not None
        for_update = {"key_share": True} if lock else None
        fresh = await session.get(ExchangeAccount, row.id, with_for_update=for_update, populate_existing=lock)
        switches = await engine_repo.kill_switches(session, row.user_id)
        return GuardState(
            mode=(fresh or row).mode,
            armed=not (fresh or row).read_only,
            # As people name them (telegram:42), since a refusal quotes them; never "user:<row id>".
            kill_switches=tuple((await engine_repo.scope_names(session, (f.scope for f in switches))).values()),
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
        async with self.locks.hold(row.id):
            if (denied := await self._access_refusal(row, intent_id, decision.action)) is not None:
                return denied
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
            auto = partial(check_automated, decision, limits=self.limits)
            recheck: Recheck = auto if automated else partial(check_approved, close_pct=verdict.close_pct)
            return await self._place(
                row, account, position, intent, decision.action, decision.model_dump(), automated, recheck
            )

    async def execute_approved_intent(
        self,
        *,
        row: ExchangeAccount,
        account: Account,
        intent: OrderIntent,
        position: Position | None,
        action: str,
        shown: Position | None = None,
    ) -> ExecutionOutcome:
        """Place an intent a person approved with a button (manual actions: close, set stop/TP, breakeven).

        `shown` is the position as the approval showed it: the live position is read again under the account's
        lock and, when it is gone or its size moved by more than `SIZE_TOLERANCE`, the press is refused and
        nothing is placed (what executes is what was shown).
        """
        assert row.id is not None
        async with self.locks.hold(row.id):
            if (denied := await self._access_refusal(row, intent.intent_id, action)) is not None:
                return denied
            verdict = check_approved(await self.guard_state(row))
            if not verdict.allowed:
                await self._audit(
                    row, "guard_refused", intent.intent_id, {"action": action, "reasons": verdict.reasons}
                )
                return ExecutionOutcome("refused", intent.intent_id, verdict.reasons, verdict.reasons[0])
            if shown is not None:
                live = [p for p in await account.positions(intent.symbol) if p.side is shown.side]
                position = live[0] if live else None
                changed = position_change(shown, position, check_size=intent.kind is IntentKind.CLOSE)
                if changed is not None:
                    await self._audit(row, "guard_refused", intent.intent_id, {"action": action, "reasons": [changed]})
                    return ExecutionOutcome("refused", intent.intent_id, [changed], changed)
            return await self._place(
                row, account, position, intent, action, {"action": action}, automated=False, recheck=check_approved
            )

    async def _access_refusal(self, row: ExchangeAccount, intent_id: str, action: str) -> ExecutionOutcome | None:
        """Refuse when the account's owner may not trade at this moment (read fresh: a revoked role counts now)."""
        if self.access is None:
            return None
        async with self.sessions() as session:
            allowed = await self.access.may_trade(session, row.user_id)
        if allowed:
            return None
        reason = "the account's owner may not trade"
        await self._audit(row, "access_refused", intent_id, {"action": action, "reasons": [reason]})
        return ExecutionOutcome("refused", intent_id, [reason], refusal(Permission.TRADER))

    async def _place(
        self,
        row: ExchangeAccount,
        account: Account,
        position: Position | None,
        intent: OrderIntent,
        action: str,
        decision: dict[str, Any],
        automated: bool,
        recheck: Recheck,
    ) -> ExecutionOutcome:
        try:
            return await self._claim_and_place(row, account, position, intent, action, decision, automated, recheck)
        except GuardRefused as refused:
            reasons = refused.verdict.reasons
            await self._audit(row, "guard_refused", intent.intent_id, {"action": action, "reasons": reasons})
            return ExecutionOutcome("refused", intent.intent_id, reasons, "; ".join(reasons))

    async def _claim_and_place(
        self,
        row: ExchangeAccount,
        account: Account,
        position: Position | None,
        intent: OrderIntent,
        action: str,
        decision: dict[str, Any],
        automated: bool,
        recheck: Recheck,
    ) -> ExecutionOutcome:
        if not await self._claim(row, position, intent, action, decision, automated, recheck):
            async with self.sessions() as session:
                previous = await engine_repo.get_execution(session, intent.intent_id)
            if previous is None or previous.status != engine_repo.PENDING:
                return _duplicate(intent.intent_id, previous)
            if self.clock() - previous.created_at < self.in_flight:
                # Maybe still in flight in another process: asking the exchange now could miss an order
                # that is about to arrive, so nothing is decided (and nothing placed) yet.
                return ExecutionOutcome("unknown", intent.intent_id, message=CHECKING)
            # Before any retry, an interrupted attempt is settled by its client order id.
            settled = await self.reconcile(row, account, previous)
            if settled.status != engine_repo.NOT_PLACED:
                return settled if settled.status == "unknown" else _found(settled)
            if not await self._claim(row, position, intent, action, decision, automated, recheck):
                return ExecutionOutcome("unknown", intent.intent_id, message=CHECKING)
        try:
            result = await account.place(intent)
        except OrderStatusUnknownError as exc:
            # The exchange may hold the order: the row stays pending until a lookup by client id settles it.
            log.warning("order %s: outcome unknown, left pending for settlement", intent.intent_id)
            return ExecutionOutcome("unknown", intent.intent_id, [exc.user_message], CHECKING)
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

    async def _claim(
        self,
        row: ExchangeAccount,
        position: Position | None,
        intent: OrderIntent,
        action: str,
        decision: dict[str, Any],
        automated: bool,
        recheck: Recheck,
    ) -> bool:
        """Claim the intent in one transaction with the guards read again under the account's row lock."""
        # The asyncio lock serialises one process only: two workers could both read "5 of 6 actions" and both
        # claim. Under the row lock the second one reads the counters after the first one's claim committed.
        intent_json = intent.model_dump(mode="json")
        async with self.sessions.begin() as session:
            verdict = recheck(await self._read_guard_state(session, row, lock=True))
            if not verdict.allowed:
                raise GuardRefused(verdict)
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
                # The position is kept so that a settlement after a crash can still compute the realised PnL.
                held = {"side": position.side.value, "entry": str(position.entry_price)} if position else None
                await audit.record(
                    session,
                    "order_request",
                    user_id=row.user_id,
                    account_id=row.id,
                    ref=intent.intent_id,
                    data={"intent": intent_json, "decision": decision, "position": held},
                )
        return claimed

    async def reconcile(self, row: ExchangeAccount, account: Account, execution: Execution) -> ExecutionOutcome:
        """Settle a pending execution by its client order id: placed (done), not placed, or unknown (left pending)."""
        intent = OrderIntent.model_validate(execution.intent)
        try:
            found = await account.find_intent(intent)
        except Exception as exc:  # the account cannot say now: never guess "not placed"
            log.warning("could not look up %s on the exchange (%s)", intent.intent_id, type(exc).__name__)
            return ExecutionOutcome("unknown", intent.intent_id, message=CHECKING)
        if found is None:
            error = "interrupted before the order reached the exchange"
            async with self.sessions.begin() as session:
                written = await engine_repo.finish_execution(
                    session, intent.intent_id, status=engine_repo.NOT_PLACED, error=error, only_pending=True
                )
                if written:
                    await audit.record(
                        session,
                        "error",
                        user_id=row.user_id,
                        account_id=row.id,
                        ref=intent.intent_id,
                        data={"settled": engine_repo.NOT_PLACED, "error": error},
                    )
            if not written:
                return await self._settled_by_other(intent.intent_id)
            return ExecutionOutcome(engine_repo.NOT_PLACED, intent.intent_id, message=error)
        position = await self._requested_position(intent.intent_id, intent.symbol)
        pnl = realised_pnl_of(position, found) if position is not None and intent.kind is IntentKind.CLOSE else None
        result = found.model_dump(mode="json")
        written = await self._finish(row, intent.intent_id, status="done", result=result, pnl=pnl, only_pending=True)
        if not written:
            return await self._settled_by_other(intent.intent_id)
        return ExecutionOutcome("placed", intent.intent_id, message=found.message, result=found, realised_pnl=pnl)

    async def _settled_by_other(self, intent_id: str) -> ExecutionOutcome:
        # Someone finished the row while the exchange was asked: their record is the truth.
        async with self.sessions() as session:
            current = await engine_repo.get_execution(session, intent_id)
        if current is not None and current.status == "done":
            return ExecutionOutcome("placed", intent_id, realised_pnl=current.realised_pnl)
        status = current.status if current is not None else engine_repo.NOT_PLACED
        return ExecutionOutcome(status, intent_id, message=(current.error or "") if current else "")

    async def _requested_position(self, intent_id: str, symbol: str) -> Position | None:
        async with self.sessions() as session:
            entries = await audit.entries(session, ref=intent_id)
        for entry in entries:
            held = (entry.data or {}).get("position") if entry.kind == "order_request" else None
            if held:
                return Position(
                    symbol=symbol, side=PositionSide(held["side"]), size=Decimal(1), entry_price=Decimal(held["entry"])
                )
        return None

    async def _finish(
        self,
        row: ExchangeAccount,
        intent_id: str,
        *,
        status: str,
        result: dict[str, Any] | None = None,
        pnl: float | None = None,
        error: str | None = None,
        only_pending: bool = False,
    ) -> bool:
        async with self.sessions.begin() as session:
            written = await engine_repo.finish_execution(
                session,
                intent_id,
                status=status,
                result=result,
                realised_pnl=pnl,
                error=error,
                only_pending=only_pending,
            )
            if not written:
                return False
            kind = "exchange_response" if status == "done" else "error"
            await audit.record(
                session,
                kind,
                user_id=row.user_id,
                account_id=row.id,
                ref=intent_id,
                data={"result": result, "realised_pnl": pnl, "error": error},
            )
        return True

    async def _audit(self, row: ExchangeAccount, kind: str, ref: str, data: dict[str, Any]) -> None:
        async with self.sessions.begin() as session:
            await audit.record(session, kind, user_id=row.user_id, account_id=row.id, ref=ref, data=data)


def position_change(shown: Position, live: Position | None, check_size: bool = True) -> str | None:
    """Why the live position is no longer the one an approval showed (gone, or size moved beyond tolerance)."""
    base = shown.symbol.split("/")[0]
    if live is None:
        return f"the {shown.symbol} {shown.side.value} is no longer open; nothing was placed"
    if check_size and abs(live.size - shown.size) > shown.size * SIZE_TOLERANCE:
        return (
            f"the {shown.symbol} {shown.side.value} is now {qty_text(live.size)} {base}, "
            f"not the {qty_text(shown.size)} {base}"
            " shown when you approved; nothing was placed. Ask again for a fresh proposal"
        )
    return None


def _duplicate(intent_id: str, previous: Execution | None) -> ExecutionOutcome:
    if previous is not None and previous.status == "failed":
        return ExecutionOutcome("duplicate", intent_id, message=f"it failed earlier: {previous.error or 'error'}")
    return ExecutionOutcome("duplicate", intent_id, message="already executed")


def _found(settled: ExecutionOutcome) -> ExecutionOutcome:
    # An interrupted attempt did reach the exchange: this call places nothing more.
    message = "executed earlier: found on the exchange by its client order id"
    return ExecutionOutcome(
        "duplicate", settled.intent_id, message=message, result=settled.result, realised_pnl=settled.realised_pnl
    )
