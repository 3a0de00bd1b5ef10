"""Loading and planning of a monitor cycle: its state, the watched positions and their plans, market views, decisions.

A cycle reads its state in a few queries (plans, recent alerts, pending approvals), reads the positions of every
account, builds each symbol's market view once and evaluates every position. Each step reports its failures and
goes on with the other accounts and symbols.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from engine.alerts import Alert, position_alerts
from engine.monitor import policy
from engine.monitor.cycle import CycleReport, CycleState, Item, failed
from engine.monitor.market_view import MarketViewSource
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.evaluate import evaluate
from engine.risk.merge import merge
from engine.risk.opinion import RiskOpinion
from storage.models import Approval, ApprovalStatus, AuditLog, ExchangeAccount, PositionPlan
from tools.exchange.base import Account
from tools.exchange.bulk import positions_of
from tools.exchange.models import Position
from tools.market.base import MarketDataError
from tools.structure.targets import plan_from_report

log = logging.getLogger(__name__)
AccountOpener = Callable[[ExchangeAccount], Awaitable[Account]]
# Optional bulk reader: positions of many accounts at once (the paper exchange reads hundreds in three queries).
PositionsReader = Callable[[list[Account]], Awaitable[list[list[Position] | BaseException]]]
MODEL_CONCURRENCY = 8


async def load_state(session: AsyncSession, account_ids: list[int], now: datetime, cooldown: timedelta) -> CycleState:
    """Plans of the accounts, the last firing of each alert within the cooldown, and the pending approvals."""
    plans = (await session.scalars(select(PositionPlan).where(col(PositionPlan.account_id).in_(account_ids)))).all()
    alert_rows = (
        await session.execute(
            select(col(AuditLog.ref), col(AuditLog.created_at)).where(
                col(AuditLog.kind) == "alert", col(AuditLog.created_at) >= now - cooldown
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
                col(Approval.account_id).in_(account_ids),
                col(Approval.status) == ApprovalStatus.PENDING.value,
                col(Approval.expires_at) > now,
            )
        )
    ).all()
    pending: dict[tuple[int, str], set[str]] = {}
    for a in pending_rows:
        pending.setdefault((a.account_id or 0, a.intent.get("symbol", "")), set()).add(a.intent.get("action", ""))
    return CycleState(
        plans={(p.account_id, p.symbol, p.side): p for p in plans}, last_alerts=last_alerts, pending=pending
    )


async def collect(
    rows: list[ExchangeAccount],
    state: CycleState,
    report: CycleReport,
    *,
    open_account: AccountOpener,
    read_positions: PositionsReader | None,
    clock: Callable[[], datetime],
) -> list[Item]:
    """Every position of every account that opens and answers, each with its plan (a new one when first seen)."""

    async def open_one(row: ExchangeAccount) -> tuple[ExchangeAccount, Account] | None:
        try:
            return row, await open_account(row)
        except Exception as exc:  # one account that cannot be opened never stops the cycle
            failed(report, f"account {row.id}", exc)
            return None

    opened = [o for o in await asyncio.gather(*(open_one(r) for r in rows)) if o is not None]
    results = await _positions([account for _, account in opened], read_positions or positions_of)
    by_id: dict[int, list[Position]] = {}
    for (row, _), result in zip(opened, results, strict=True):
        if isinstance(result, Exception):
            failed(report, f"account {row.id}", result)
        elif isinstance(result, BaseException):
            raise result  # cancellation and interpreter exits are not an account's fault
        else:
            by_id[row.id or 0] = result
    return [
        Item(row, account, p, *plan_for(row, p, state, clock))
        for row, account in opened
        for p in by_id.get(row.id or 0, [])
    ]


async def _positions(accounts: list[Account], reader: PositionsReader) -> list[list[Position] | BaseException]:
    """Positions of every account; if the bulk read fails as a whole, each account is read on its own."""
    try:
        return await reader(accounts)
    except Exception:
        log.exception("monitor: bulk position read failed; reading accounts one by one")
        return list(await asyncio.gather(*(a.positions() for a in accounts), return_exceptions=True))


def plan_for(
    row: ExchangeAccount, position: Position, state: CycleState, clock: Callable[[], datetime]
) -> tuple[PositionPlan, bool]:
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
    plan.opened_at = clock()
    state.plans[key] = plan
    return plan, True


async def market_views(
    symbols: set[str], source: MarketViewSource, timeframe: str, report: CycleReport
) -> dict[str, MarketView]:
    """Each symbol's market view, built once for all its positions; a symbol that fails is left out."""

    async def one(symbol: str) -> tuple[str, MarketView | None]:
        try:
            return symbol, await source.view(symbol, timeframe)
        except MarketDataError as exc:
            report.errors.append(f"{symbol}: {exc.user_message}")
            return symbol, None
        except Exception as exc:  # a structure failure for one symbol never stops the others
            failed(report, symbol, exc)
            return symbol, None

    return {s: v for s, v in await asyncio.gather(*(one(s) for s in sorted(symbols))) if v is not None}


def evaluate_all(items: list[Item], views: dict[str, MarketView], report: CycleReport) -> list[Item]:
    """The items with a market view, each with its context and the rules' decision (a failing one is left out)."""
    out = []
    for item in items:
        view = views.get(item.position.symbol)
        if view is None:
            continue
        try:
            item.ctx = context(item, view)
            item.decision = evaluate(item.ctx)
        except Exception as exc:  # one position's bad data must not stop the others
            failed(report, f"account {item.row.id} {item.position.symbol}", exc)
            continue
        out.append(item)
    return out


async def ask_model(items: list[Item], opinion: RiskOpinion, report: CycleReport) -> None:
    """Merge the model's opinion into each soft decision, a few questions at a time; a failure keeps the rules'."""
    gate = asyncio.Semaphore(MODEL_CONCURRENCY)

    async def one(item: Item) -> None:
        assert item.ctx is not None and item.decision is not None
        try:
            async with gate:
                proposal, error = await opinion.ask(item.ctx)
            item.decision = merge(item.ctx, item.decision, proposal, error)
        except Exception as exc:  # the rules' decision stands
            failed(report, f"model opinion on {item.position.symbol}", exc)

    await asyncio.gather(*(one(i) for i in items if i.decision is not None and not i.decision.hard))


def fresh_alerts(
    items: list[Item], state: CycleState, now: datetime, cooldown: timedelta, report: CycleReport
) -> list[tuple[int, Alert]]:
    """Alerts whose condition did not fire within the cooldown (the audit log is the memory)."""
    out = []
    for item in items:
        assert item.ctx is not None and item.decision is not None and item.row.id is not None
        try:
            fired = position_alerts(item.ctx, item.decision, item.row.id)
        except Exception as exc:
            failed(report, f"alerts of {item.position.symbol}", exc)
            continue
        for alert in fired:
            ref = f"alert:{alert.key}"
            if not policy.alert_due(state.last_alerts.get(ref), now, cooldown):
                continue
            state.last_alerts[ref] = now
            out.append((item.row.user_id, alert))
    return out


def context(item: Item, view: MarketView) -> RiskContext:
    """The risk context of a position: the exchange's view of it, its plan, and the market."""
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
