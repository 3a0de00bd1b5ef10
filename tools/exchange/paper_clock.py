"""What happens to a paper account as market time passes: funding at the 8 h marks and limit entries expiring.

Times are the market's (the ticker's timestamp), so a replayed or simulated clock drives them exactly as the
wall clock drives a live one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tools.exchange.models import OrderRole, OrderStatus, PositionSide
from tools.exchange.paper_engine import MONEY_QUANTUM, PaperFunding, PaperState

FUNDING_INTERVAL = timedelta(hours=8)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def funding_mark(at: datetime) -> datetime:
    """The latest funding time (00:00, 08:00 or 16:00 UTC) at or before `at`."""
    periods = (at.astimezone(UTC) - _EPOCH) // FUNDING_INTERVAL
    return _EPOCH + periods * FUNDING_INTERVAL


def funding_due(state: PaperState, at: datetime) -> list[str]:
    """Symbols whose position has a funding mark to settle by `at` (a rate must be fetched for them)."""
    mark = funding_mark(at)
    return sorted(
        s for s, p in state.positions.items() if p.funded_at is not None and p.funded_at + FUNDING_INTERVAL <= mark
    )


def settle_funding(
    state: PaperState, at: datetime, marks: dict[str, Decimal], rates: dict[str, Decimal]
) -> list[PaperFunding]:
    """Charge or pay each open position at every funding mark it held through, at the source's rate.

    A position opened since the last mark is only stamped (it pays from the next one). A symbol without a rate
    (the source publishes none, e.g. candle files) is left unsettled: funding is never invented.
    """
    mark_now = funding_mark(at)
    paid: list[PaperFunding] = []
    for symbol, pos in sorted(state.positions.items()):
        if pos.funded_at is None:
            pos.funded_at = mark_now
            state.touched_positions.add(symbol)
            continue
        rate = rates.get(symbol)
        if rate is None or symbol not in marks or pos.funded_at + FUNDING_INTERVAL > mark_now:
            continue
        # Positive funding: longs pay shorts (a long's amount is negative).
        sign = Decimal(-1) if pos.side is PositionSide.LONG else Decimal(1)
        when = pos.funded_at + FUNDING_INTERVAL
        while when <= mark_now:
            amount = (sign * pos.size * marks[symbol] * rate).quantize(MONEY_QUANTUM)
            payment = PaperFunding(symbol, when, pos.side, pos.size, marks[symbol], rate, amount)
            state.wallet += amount
            state.funding += amount
            state.payments.append(payment)
            paid.append(payment)
            when += FUNDING_INTERVAL
        pos.funded_at = mark_now
        state.touched_positions.add(symbol)
    return paid


def expire_orders(state: PaperState, at: datetime) -> list[str]:
    """Cancel resting entries whose expiry has passed (with their waiting stop and target); their ids."""
    gone: list[str] = []
    for order in state.open_orders():
        if order.role is not OrderRole.MAIN or order.expires_at is None or at < order.expires_at:
            continue
        order.status = OrderStatus.EXPIRED
        state.touched_orders.add(order.id)
        gone.append(order.id)
        for sibling in state.open_orders(order.symbol):
            if sibling.intent_id == order.intent_id and sibling.reduce_only:
                sibling.status = OrderStatus.CANCELED
                state.touched_orders.add(sibling.id)
    state.expired.extend(gone)
    return gone
