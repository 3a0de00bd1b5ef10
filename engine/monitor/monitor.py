"""One monitor cycle: for each advising/automated account, evaluate every position, alert, and propose or act.

A cycle reads its state in a few queries (accounts, plans, recent alerts, pending approvals), builds each
symbol's market view once, evaluates every position, writes all decisions in one transaction, and only
then does the slow, per-position work (orders, approval requests) for the positions that need it.
Loading and planning live in `planning`, the execute/propose/skip choice in `policy`, the records in
`persistence`, the texts people see in `notifier`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.execution.executor import Executor
from engine.monitor import persistence, planning, policy
from engine.monitor.cycle import CycleReport, CycleState, Item, failed
from engine.monitor.market_view import MarketViewSource
from engine.monitor.notifier import Notifier, explain
from engine.monitor.planning import AccountOpener, PositionsReader
from engine.monitor.policy import Choice, Step
from engine.risk.opinion import RiskOpinion
from storage.models import AccountMode
from storage.repositories import engine as engine_repo
from storage.repositories.users import user_refs
from storage.types import utcnow

__all__ = ["CycleReport", "Monitor"]


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
            ids = [r.id for r in rows if r.id is not None]
            state = await planning.load_state(session, ids, now, self.alert_cooldown)
        items = await planning.collect(
            rows, state, report, open_account=self.open_account, read_positions=self.read_positions, clock=self.clock
        )
        views = await planning.market_views({i.position.symbol for i in items}, self.views, self.timeframe, report)
        items = planning.evaluate_all(items, views, report)
        if self.opinion is not None:
            await planning.ask_model(items, self.opinion, report)
        alerts = planning.fresh_alerts(items, state, now, self.alert_cooldown, report)
        try:
            await persistence.record_cycle(self.sessions, items, alerts, now)
        except Exception as exc:  # acting stays safe without the records: intent ids do not depend on them
            failed(report, "recording the cycle", exc)
        report.positions = len(items)
        report.decisions = [i.decision for i in items if i.decision is not None]
        for user_id, alert in alerts:
            try:
                await self.notifier.send_alert(user_id, alert)
                report.alerts += 1
            except Exception as exc:
                async with self.sessions() as session:  # the report names the user as people do, not the row id
                    who = (await user_refs(session, [user_id])).get(user_id, f"user {user_id}")
                failed(report, f"alert to {who}", exc)
        await asyncio.gather(*(self._act(group, state, report) for group in _by_account(items).values()))
        return report

    async def _act(self, items: list[Item], state: CycleState, report: CycleReport) -> None:
        """Orders or approval requests for one account's positions, in order (the executor locks the account)."""
        for item in items:
            try:
                await self._act_on(item, state, report)
            except Exception as exc:  # an executor or notifier crash on one position never stops the others
                failed(report, f"account {item.row.id} {item.position.symbol}", exc)

    async def _act_on(self, item: Item, state: CycleState, report: CycleReport) -> None:
        """Follow the policy for one position: at most one action per condition of its epoch."""
        decision, row, position, plan = item.decision, item.row, item.position, item.plan
        if decision is None:
            return
        size, handled = float(position.size), dict(plan.handled)
        pending = state.pending_actions(row.id or 0, position.symbol)
        auto = row.mode == AccountMode.AUTO
        step: Step | None = policy.choose(decision, auto=auto, handled=handled, size=size, pending=pending)
        while step is not None and step.choice is Choice.EXECUTE:
            state_text = policy.position_state(plan.epoch, plan.entry)
            outcome = await self.executor.execute(
                row=row,
                account=item.account,
                position=position,
                decision=step.decision,
                intent_id=policy.intent_id(row.id or 0, position.symbol, position.side.value, state_text, step.key),
                automated=True,
            )
            report.executions.append(outcome)
            report.actions.append(explain(position, step.decision, outcome))
            recorded = policy.recorded_outcome(outcome.status)
            if recorded is not None:
                handled[step.key] = recorded
                await persistence.record_outcome(self.sessions, plan, step, recorded)
            step = policy.after(step, outcome.status, handled=handled, size=size, pending=pending)
        if step is not None and step.choice is Choice.PROPOSE:
            pending.add(step.decision.action)  # before the write: a request that fails is not retried this cycle
            approval = await persistence.record_proposal(
                self.sessions, item, step, ttl=self.approval_ttl, now=self.clock()
            )
            await self.notifier.request_approval(row.user_id, approval, step.decision)
            report.approvals += 1


def _by_account(items: list[Item]) -> dict[int, list[Item]]:
    groups: dict[int, list[Item]] = {}
    for item in items:
        groups.setdefault(item.row.id or 0, []).append(item)
    return groups
