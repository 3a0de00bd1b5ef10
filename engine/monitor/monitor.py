"""One monitor cycle: for each advising/automated account, evaluate every position, alert, and propose or act.

A cycle reads its state in a few queries (accounts, plans, recent alerts, pending approvals), builds each
symbol's market view once, evaluates every position, writes all decisions in one transaction, and only
then does the slow, per-position work (orders, approval requests) for the positions that need it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.alerts import Alert, position_alerts
from engine.execution.executor import ExecutionOutcome, Executor
from engine.monitor import policy
from engine.monitor.market_view import MarketViewSource
from engine.monitor.notifier import Notifier
from engine.monitor.policy import Choice, Step
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.decision import Decision
from engine.risk.evaluate import evaluate
from engine.risk.merge import merge
from engine.risk.opinion import RiskOpinion
from storage.models import (
    AccountMode,
    Approval,
    ApprovalStatus,
    AuditLog,
    ExchangeAccount,
    PositionPlan,
    RiskDecision,
)
from storage.repositories import approvals, audit
from storage.repositories import engine as engine_repo
from storage.types import utcnow
from tools.exchange.base import Account
from tools.exchange.bulk import positions_of
from tools.exchange.errors import AccountError
from tools.exchange.models import Position, qty_text
from tools.market.base import MarketDataError
from tools.numbers import price_text
from tools.structure.targets import plan_from_report

log = logging.getLogger(__name__)
AccountOpener = Callable[[ExchangeAccount], Awaitable[Account]]
# Optional bulk reader: positions of many accounts at once (the paper exchange reads hundreds in three queries).
PositionsReader = Callable[[list[Account]], Awaitable[list[list[Position] | BaseException]]]
PlanKey = tuple[int, str, str]
MODEL_CONCURRENCY = 8


@dataclass
class CycleReport:
    """What one cycle did, for logs, metrics and tests."""

    positions: int = 0
    decisions: list[Decision] = field(default_factory=list)
    approvals: int = 0
    executions: list[ExecutionOutcome] = field(default_factory=list)
    alerts: int = 0
    errors: list[str] = field(default_factory=list)
    # One line per automated execution: what, why (the rule and its reason) and what came of it (placed, or the
    # guard or kill switch that refused it), so an operator watching the monitor is never left guessing.
    actions: list[str] = field(default_factory=list)


@dataclass
class _Item:
    row: ExchangeAccount
    account: Account
    position: Position
    plan: PositionPlan
    new_plan: bool = False
    ctx: RiskContext | None = None
    decision: Decision | None = None


@dataclass
class _CycleState:
    plans: dict[PlanKey, PositionPlan]
    last_alerts: dict[str, datetime]
    pending: set[tuple[int, str, str]]


class Monitor:
    """Watches positions of accounts in advise or auto mode (off accounts are never touched)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        open_account: AccountOpener,
        views: MarketViewSource,
        executor: Executor,
        notifier: Notifier,
        opinion: RiskOpinion | None = None,
        read_positions: PositionsReader | None = None,
        timeframe: str = "1h",
        approval_ttl: timedelta = timedelta(minutes=5),
        alert_cooldown: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.open_account = open_account
        self.views = views
        self.executor = executor
        self.notifier = notifier
        self.opinion = opinion
        self.read_positions = read_positions
        self.timeframe = timeframe
        self.approval_ttl = approval_ttl
        self.alert_cooldown = alert_cooldown
        self.clock = clock

    async def run_cycle(self) -> CycleReport:
        """Evaluate every watched position once; one account's or symbol's failure never stops the others."""
        report = CycleReport()
        now = self.clock()
        async with self.sessions() as session:
            rows = await engine_repo.accounts_in_modes(session, (AccountMode.ADVISE, AccountMode.AUTO))
            state = await self._load_state(session, [r.id for r in rows if r.id is not None], now)
        items = await self._collect(rows, state, report)
        views = await self._views({i.position.symbol for i in items}, report)
        items = [i for i in items if i.position.symbol in views]
        for item in items:
            try:
                item.ctx = _context(item, views[item.position.symbol])
                item.decision = evaluate(item.ctx)
            except Exception as exc:  # one position's bad data must not stop the others
                _failed(report, f"account {item.row.id} {item.position.symbol}", exc)
        items = [i for i in items if i.decision is not None]
        if self.opinion is not None:
            await self._ask_model([i for i in items if i.decision is not None and not i.decision.hard], report)
        alerts = self._fresh_alerts(items, state, now, report)
        try:
            await self._persist(items, alerts, now)
        except Exception as exc:  # acting stays safe without the records: intent ids do not depend on them
            _failed(report, "recording the cycle", exc)
        report.positions = len(items)
        report.decisions = [i.decision for i in items if i.decision is not None]
        for user_id, alert in alerts:
            try:
                await self.notifier.send_alert(user_id, alert)
                report.alerts += 1
            except Exception as exc:
                _failed(report, f"alert to user {user_id}", exc)
        await asyncio.gather(*(self._act(group, state, report) for group in _by_account(items).values()))
        return report

    async def _load_state(self, session: AsyncSession, account_ids: list[int], now: datetime) -> _CycleState:
        plans = (await session.scalars(select(PositionPlan).where(PositionPlan.account_id.in_(account_ids)))).all()  # type: ignore[attr-defined]
        alert_rows = (
            await session.execute(
                select(AuditLog.ref, AuditLog.created_at).where(
                    AuditLog.kind == "alert", AuditLog.created_at >= now - self.alert_cooldown
                )
            )
        ).all()
        last_alerts: dict[str, datetime] = {}
        for ref, created in alert_rows:
            if ref and (ref not in last_alerts or created > last_alerts[ref]):
                last_alerts[ref] = created
        pending_rows = (
            await session.scalars(
                select(Approval).where(
                    Approval.account_id.in_(account_ids),  # type: ignore[union-attr]
                    Approval.status == ApprovalStatus.PENDING.value,
                    Approval.expires_at > now,
                )
            )
        ).all()
        return _CycleState(
            plans={(p.account_id, p.symbol, p.side): p for p in plans},
            last_alerts=last_alerts,
            pending={(a.account_id or 0, a.intent.get("symbol", ""), a.intent.get("action", "")) for a in pending_rows},
        )

    async def _collect(self, rows: list[ExchangeAccount], state: _CycleState, report: CycleReport) -> list[_Item]:
        async def open_one(row: ExchangeAccount) -> tuple[ExchangeAccount, Account] | None:
            try:
                return row, await self.open_account(row)
            except Exception as exc:  # one account that cannot be opened never stops the cycle
                _failed(report, f"account {row.id}", exc)
                return None

        opened = [o for o in await asyncio.gather(*(open_one(r) for r in rows)) if o is not None]
        results = await self._positions([account for _, account in opened])
        by_id: dict[int, list[Position]] = {}
        for (row, _), result in zip(opened, results, strict=True):
            if isinstance(result, Exception):
                _failed(report, f"account {row.id}", result)
            elif isinstance(result, BaseException):
                raise result  # cancellation and interpreter exits are not an account's fault
            else:
                by_id[row.id or 0] = result
        return [
            _Item(row, account, p, *self._plan_for(row, p, state))
            for row, account in opened
            for p in by_id.get(row.id or 0, [])
        ]

    async def _positions(self, accounts: list[Account]) -> list[list[Position] | BaseException]:
        """Positions of every account; if the bulk read fails as a whole, each account is read on its own."""
        reader = self.read_positions or positions_of
        try:
            return await reader(accounts)
        except Exception:
            log.exception("monitor: bulk position read failed; reading accounts one by one")
            return list(await asyncio.gather(*(a.positions() for a in accounts), return_exceptions=True))

    def _plan_for(self, row: ExchangeAccount, position: Position, state: _CycleState) -> tuple[PositionPlan, bool]:
        """The stored plan of a position, or a new one (second value True) for a position seen the first time."""
        assert row.id is not None
        key = (row.id, position.symbol, position.side.value)
        plan = state.plans.get(key)
        if plan is not None and abs(plan.entry - float(position.entry_price)) <= 1e-12:
            return plan, False
        # A new position (or a re-entry at another price): a fresh plan, targets filled from structure later.
        # A new epoch: the conditions handled for the previous position do not carry over, and its intent ids
        # (which contain the epoch) can never collide with this one's.
        epoch = plan.epoch + 1 if plan is not None else 0
        plan = plan or PositionPlan(account_id=row.id, symbol=position.symbol, side=position.side.value, entry=0)
        plan.entry, plan.stop, plan.targets, plan.targets_hit = float(position.entry_price), None, [], 0
        plan.epoch, plan.handled = epoch, {}
        plan.initial_stop = float(position.stop_loss) if position.stop_loss else None
        plan.opened_at = self.clock()
        state.plans[key] = plan
        return plan, True

    async def _views(self, symbols: set[str], report: CycleReport) -> dict[str, MarketView]:
        async def one(symbol: str) -> tuple[str, MarketView | None]:
            try:
                return symbol, await self.views.view(symbol, self.timeframe)
            except MarketDataError as exc:
                report.errors.append(f"{symbol}: {exc.user_message}")
                return symbol, None
            except Exception as exc:  # a structure failure for one symbol never stops the others
                _failed(report, symbol, exc)
                return symbol, None

        return {s: v for s, v in await asyncio.gather(*(one(s) for s in sorted(symbols))) if v is not None}

    async def _ask_model(self, items: list[_Item], report: CycleReport) -> None:
        assert self.opinion is not None
        gate = asyncio.Semaphore(MODEL_CONCURRENCY)
        opinion = self.opinion

        async def one(item: _Item) -> None:
            assert item.ctx is not None and item.decision is not None
            try:
                async with gate:
                    proposal, error = await opinion.ask(item.ctx)
                item.decision = merge(item.ctx, item.decision, proposal, error)
            except Exception as exc:  # the rules' decision stands
                _failed(report, f"model opinion on {item.position.symbol}", exc)

        await asyncio.gather(*(one(i) for i in items))

    def _fresh_alerts(
        self, items: list[_Item], state: _CycleState, now: datetime, report: CycleReport
    ) -> list[tuple[int, Alert]]:
        """Alerts whose condition did not fire within the cooldown (the audit log is the memory)."""
        out = []
        for item in items:
            assert item.ctx is not None and item.decision is not None and item.row.id is not None
            try:
                fired = position_alerts(item.ctx, item.decision, item.row.id)
            except Exception as exc:
                _failed(report, f"alerts of {item.position.symbol}", exc)
                continue
            for alert in fired:
                ref = f"alert:{alert.key}"
                last = state.last_alerts.get(ref)
                if last is not None and now - last < self.alert_cooldown:
                    continue
                state.last_alerts[ref] = now
                out.append((item.row.user_id, alert))
        return out

    async def _persist(self, items: list[_Item], alerts: list[tuple[int, Alert]], now: datetime) -> None:
        """New plans, decisions worth keeping and alert records of the whole cycle, in one transaction.

        A HOLD repeated every cycle carries no information: decisions are stored when they propose something,
        and on a position's first evaluation.
        """
        decisions = []
        async with self.sessions.begin() as session:
            for item in items:
                assert item.ctx is not None and item.decision is not None
                if item.new_plan:
                    item.plan.updated_at = now
                    item.plan = await session.merge(item.plan)
                d, ctx = item.decision, item.ctx
                if d.action == "HOLD" and not item.new_plan:
                    continue
                decisions.append(
                    {
                        "account_id": item.row.id,
                        "symbol": ctx.position.symbol,
                        "side": ctx.position.side,
                        "action": d.action,
                        "confidence": d.confidence,
                        "reasoning": d.reasoning,
                        "close_pct": d.close_pct,
                        "new_stop": d.new_stop,
                        "source": d.source,
                        "created_at": now,
                        "context": {
                            "price": ctx.market.price,
                            "atr": ctx.market.atr,
                            "rule": d.rule,
                            "notes": d.notes,
                            "warnings": d.warnings,
                        },
                    }
                )
            if decisions:
                await session.execute(insert(RiskDecision), decisions)
            if alerts:
                await session.execute(
                    insert(AuditLog),
                    [
                        {
                            "kind": "alert",
                            "user_id": user_id,
                            "ref": f"alert:{alert.key}",
                            "data": alert.model_dump(),
                            "created_at": now,
                        }
                        for user_id, alert in alerts
                    ],
                )

    async def _act(self, items: list[_Item], state: _CycleState, report: CycleReport) -> None:
        """Orders or approval requests for one account's positions, in order (the executor locks the account)."""
        for item in items:
            try:
                await self._act_on(item, state, report)
            except Exception as exc:  # an executor or notifier crash on one position never stops the others
                _failed(report, f"account {item.row.id} {item.position.symbol}", exc)

    async def _act_on(self, item: _Item, state: _CycleState, report: CycleReport) -> None:
        """Follow the policy for one position: at most one action per condition of its epoch."""
        decision, row = item.decision, item.row
        if decision is None:
            return
        size = float(item.position.size)
        handled = dict(item.plan.handled)
        step: Step | None = policy.choose(decision, auto=row.mode == AccountMode.AUTO, handled=handled, size=size)
        while step is not None and step.choice is Choice.EXECUTE:
            outcome = await self.executor.execute(
                row=row,
                account=item.account,
                position=item.position,
                decision=step.decision,
                intent_id=policy.intent_id(
                    row.id or 0, item.position.symbol, item.position.side.value, _state(item.plan), step.key
                ),
                automated=True,
            )
            report.executions.append(outcome)
            report.actions.append(_explain(item.position, step.decision, outcome))
            recorded = policy.recorded_outcome(outcome.status)
            if recorded is not None:
                handled[step.key] = recorded
                await self._record(item, step, recorded)
            step = policy.after(step, outcome.status, handled=handled, size=size)
        if step is not None and step.choice is Choice.PROPOSE:
            await self._propose(item, step, state, report)

    async def _record(self, item: _Item, step: Step, outcome: str) -> None:
        target, stop = policy.plan_effects(step.decision)
        async with self.sessions.begin() as session:
            await engine_repo.record_plan_action(
                session,
                item.plan.account_id,
                item.plan.symbol,
                item.plan.side,
                epoch=item.plan.epoch,
                key=step.key,
                outcome=outcome,
                target_taken=target,
                stop=stop,
            )

    async def _propose(self, item: _Item, step: Step, state: _CycleState, report: CycleReport) -> None:
        """One approval request per condition of the position's epoch (and none while one for its action pends)."""
        decision, row, position, plan = step.decision, item.row, item.position, item.plan
        assert row.id is not None
        key = (row.id, position.symbol, decision.action)
        if key in state.pending:
            return
        state.pending.add(key)
        target, stop = policy.plan_effects(decision)
        intent = {
            "symbol": position.symbol,
            "side": position.side.value,
            "action": decision.action,
            "close_pct": decision.close_pct,
            "new_stop": decision.new_stop,
            "account_id": row.id,
            # The position as shown: a press after it changed beyond the executor's tolerance is refused.
            "size": str(position.size),
            # What an approved execution records in the plan (engine.execution.proposals), so the condition is
            # not proposed again and a taken target counts.
            "plan": {"epoch": plan.epoch, "key": step.key, "target_taken": target, "stop": stop},
        }
        async with self.sessions.begin() as session:
            approval = await approvals.create_approval(
                session,
                owner_user_id=row.user_id,
                intent=intent,
                summary=summarise(position, decision),
                ttl=self.approval_ttl,
                account_id=row.id,
                now=self.clock(),
            )
            await audit.record(
                session,
                "approval_requested",
                user_id=row.user_id,
                account_id=row.id,
                ref=approval.token,
                data={"decision": decision.model_dump(), "condition": step.key, "why": step.why},
            )
            # In the same transaction as the approval: a request is never made without being remembered.
            await engine_repo.record_plan_action(
                session, plan.account_id, plan.symbol, plan.side, epoch=plan.epoch, key=step.key, outcome="proposed"
            )
        await self.notifier.request_approval(row.user_id, approval, decision)
        report.approvals += 1


def _failed(report: CycleReport, what: str, exc: BaseException) -> None:
    """Record one part's failure in the report and the log; the cycle goes on with the other parts."""
    if isinstance(exc, AccountError | MarketDataError):
        report.errors.append(f"{what}: {exc.user_message}")
        log.warning("monitor: %s skipped: %s", what, exc.user_message)
    else:
        report.errors.append(f"{what}: {type(exc).__name__}: {exc}")
        log.error("monitor: %s failed", what, exc_info=exc)


def _state(plan: PositionPlan) -> str:
    """The position's state in intent ids: its epoch, and its entry (an epoch is never reused for another)."""
    return f"e{plan.epoch}@{plan.entry:.10g}"


def _context(item: _Item, view: MarketView) -> RiskContext:
    position, plan = item.position, item.plan
    if item.new_plan:
        _fill_targets(plan, view)
    return RiskContext(
        position=RiskPosition(
            symbol=position.symbol,
            side=position.side.value,
            entry=float(position.entry_price),
            size=float(position.size),
            leverage=float(position.leverage or 1),
            stop=float(position.stop_loss) if position.stop_loss else plan.stop,
            initial_stop=plan.initial_stop,
            targets=plan.targets,
            targets_hit=plan.targets_hit,
            opened_at=plan.opened_at,
            style=plan.style,  # type: ignore[arg-type]
        ),
        market=view,
    )


def _fill_targets(plan: PositionPlan, view: MarketView) -> None:
    """Targets (and 1R when no stop exists) of a new plan from the structure around its entry."""
    structure = view.structure
    if structure is None or plan.targets:
        return
    trade = plan_from_report(structure, plan.side, entry=plan.entry)  # type: ignore[arg-type]
    plan.targets = [t.price for t in trade.targets]
    plan.initial_stop = plan.initial_stop or trade.stop


def _by_account(items: list[_Item]) -> dict[int, list[_Item]]:
    groups: dict[int, list[_Item]] = {}
    for item in items:
        groups.setdefault(item.row.id or 0, []).append(item)
    return groups


def summarise(position: Position, decision: Decision) -> str:
    """The exact action text a person approves, in absolute sizes: 'REDUCE 50%: close 5 of 10 SOL of …'."""
    pct = decision.effective_close_pct
    stop = price_text(decision.new_stop, position.symbol) if decision.new_stop else None  # at the tick, no "128852.0"
    labels = {
        "TP_PARTIAL": f"TAKE PROFIT {pct:g}%",
        "REDUCE_SIZE": f"REDUCE {pct:g}%",
        "TP_FULL": "TAKE PROFIT 100%",
        "EXIT_FULL": "EXIT 100%",
        "EMERGENCY_EXIT": "EMERGENCY EXIT 100%",
        "MOVE_STOP_BE": f"MOVE STOP to breakeven {stop}" if stop else "MOVE STOP to breakeven",
        "TRAIL_STOP": f"TRAIL STOP to {stop}" if stop else "TRAIL STOP",
        "ADJUST_STOP": f"SET STOP to {stop}" if stop else "ADJUST STOP",
    }
    what = labels.get(decision.action, decision.action)
    base = position.symbol.split("/")[0]
    size = qty_text(position.size)
    if decision.closes:
        amount = qty_text((position.size * Decimal(str(pct)) / 100).quantize(Decimal("1e-10")))
        held = f"close {amount} of {size} {base}"
    else:
        held = f"{size} {base} held"
    return f"{what} of {position.symbol} {position.side.value} ({held}): {decision.reasoning}"


def _explain(position: Position, decision: Decision, outcome: ExecutionOutcome) -> str:
    """ "SOL/USDT:USDT long: EXIT_FULL (hard_stop: …) → placed" or "… → refused: kill switch engaged"."""
    why = f"{decision.rule}: {decision.reasoning}" if decision.rule else decision.reasoning
    result = outcome.status
    if outcome.reasons or outcome.message:
        result += ": " + ("; ".join(outcome.reasons) or outcome.message)
    return f"{position.symbol} {position.side.value}: {decision.action} ({why[:160]}) → {result}"
