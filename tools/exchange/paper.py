"""The built-in paper exchange: simulated fills at the market data provider's price, state in the database."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import paper as repo
from storage.exchange_ids import CCXT_EXCHANGES, PAPER
from tools.exchange.errors import AccountError, ExchangeUnavailableError, IntentConflictError
from tools.exchange.models import (
    Balance,
    Order,
    OrderIntent,
    OrderRole,
    OrderStatus,
    PlaceResult,
    Position,
)
from tools.exchange.paper_clock import expire_orders, funding_due, settle_funding
from tools.exchange.paper_engine import (
    ZERO,
    PaperConfig,
    PaperState,
    evaluate,
    liquidation_price,
    unrealised,
    used_margin,
)
from tools.exchange.paper_orders import QUANTUM, Marks, apply_intent
from tools.exchange.paper_store import (
    load_state,
    load_states,
    order_from_row,
    read_state,
    record_result,
    recorded_result,
    save_state,
    to_public_order,
)
from tools.market.base import MarketData

# The account key of a paper account opened by the app when the market is not the default (simulated) one.
DEFAULT_SOURCE = "simulated"


def market_source_of(market: MarketData) -> str:
    """What values a paper account: the provider's name, every live ccxt exchange counting as one `live`."""
    name = str(getattr(market, "name", "unknown"))
    return "live" if name in CCXT_EXCHANGES else name


def paper_account_key(row_id: int, market: MarketData) -> str:
    """The paper account of exchange-account row `row_id` on this market: one separate account per source."""
    source = market_source_of(market)
    return f"paper:{row_id}" if source == DEFAULT_SOURCE else f"paper:{row_id}@{source}"


class MarketSourceMismatchError(AccountError):
    """The paper account was opened on another market data source; its positions are never revalued on this one."""

    def __init__(self, bound: str, current: str) -> None:
        super().__init__(
            f"This paper account was opened on the {bound} market and the market data source is now {current}. "
            f"Its positions are not revalued at another market's prices: switch BASTION_EXCHANGE__MARKET_DATA "
            f"back to {bound} to use it."
        )
        self.bound, self.current = bound, current


class PaperAccount:
    """An `Account` that simulates a USDT-perpetuals exchange; market data decides fills."""

    exchange_id = PAPER
    simulated = True

    def __init__(
        self,
        account_id: str,
        market: MarketData,
        sessions: async_sessionmaker[AsyncSession],
        config: PaperConfig | None = None,
    ) -> None:
        self.account_id = account_id
        self.market = market
        self.sessions = sessions
        self.config = config or PaperConfig()
        self.market_source = market_source_of(market)
        # One writer per account in this process; across processes the account's row lock (PostgreSQL) or the
        # write transaction (SQLite) makes every update read the previous one's result (`load_state`).
        self._lock = asyncio.Lock()

    async def _price(self, symbol: str) -> Decimal:
        return (await self._quote(symbol))[0]

    async def _quote(self, symbol: str) -> tuple[Decimal, datetime]:
        try:
            ticker = await self.market.ticker(symbol)
        except Exception as exc:
            raise ExchangeUnavailableError(f"No price for {symbol} right now, so the paper order cannot fill.") from exc
        return Decimal(str(ticker.last)), ticker.timestamp

    async def _marks(self, state: PaperState | None, extra: str | None = None, known: Marks | None = None) -> Marks:
        symbols = set(state.positions) | {o.symbol for o in state.open_orders()} if state is not None else set()
        if extra:
            symbols.add(extra)
        marks = Marks()
        marks.at = known.at if known is not None else None
        for s in sorted(symbols):
            if known is not None and s in known:
                marks[s] = known[s]
                continue
            price, at = await self._quote(s)
            marks[s] = price
            marks.at = at if marks.at is None else max(marks.at, at)
        return marks

    async def _rates(self, state: PaperState | None, marks: Marks) -> dict[str, Decimal]:
        """Funding rates of the positions with a funding mark to settle; none where the source has no rate."""
        if state is None or marks.at is None:
            return {}
        rates: dict[str, Decimal] = {}
        for symbol in funding_due(state, marks.at):
            try:
                rates[symbol] = Decimal(str((await self.market.funding(symbol)).rate))
            except Exception:  # the source publishes no funding (candle files): nothing is charged, nothing invented
                continue
        return rates

    def _check_source(self, state: PaperState) -> None:
        if state.market_source not in (None, self.market_source):
            raise MarketSourceMismatchError(state.market_source, self.market_source)
        state.market_source = self.market_source

    def _process(self, state: PaperState, marks: Marks, rates: dict[str, Decimal]) -> None:
        """Expiries, fills and triggers, liquidations, then funding, at the observed prices and market time."""
        self._check_source(state)
        if marks.at is not None:
            expire_orders(state, marks.at)
        for symbol, last in marks.items():
            evaluate(state, symbol, last, self.config)
        if marks.at is not None:
            settle_funding(state, marks.at, marks, rates)

    async def _read(self, extra: str | None = None) -> tuple[PaperState | None, Marks, dict[str, Decimal]]:
        # Prices are fetched before the write transaction: holding the account's lock (on SQLite the only write
        # lock) across market data calls would stall every other writer.
        async with self.sessions() as session:
            state = await read_state(session, self.account_id)
        if state is not None:
            self._check_source(state)
        marks = await self._marks(state, extra)
        return state, marks, await self._rates(state, marks)

    async def _synced(
        self, session: AsyncSession, marks: Marks, rates: dict[str, Decimal], extra: str | None = None
    ) -> tuple[PaperState, Marks]:
        state = await load_state(session, self.account_id, self.config, self.market_source)
        # Only a symbol another writer added since `_read` costs a price fetch under the lock.
        marks = await self._marks(state, extra, marks)
        self._process(state, marks, rates)
        return state, marks

    async def _current(self) -> tuple[PaperState, Marks]:
        """State after processing triggers; a write transaction only when they changed something."""
        state, marks, rates = await self._read()
        if state is not None:
            self._process(state, marks, rates)
            if not changed(state):
                return state, marks
        async with self._lock, self.sessions.begin() as session:
            state, marks = await self._synced(session, marks, rates)
            if changed(state):
                await save_state(session, state)
        return state, marks

    async def sync(self) -> None:
        """Fill crossed limit orders, fire stops / take-profits and liquidations at current prices."""
        await self._current()

    async def balance(self) -> Balance:
        """Wallet, unrealised PnL and margin, after processing triggers."""
        state, marks = await self._current()
        pnl = sum((unrealised(p, marks[s]) for s, p in state.positions.items()), ZERO)
        used = used_margin(state)
        return Balance(
            currency=self.config.currency,
            total=state.wallet + pnl,
            free=state.wallet + pnl - used,
            used=used,
            unrealised_pnl=pnl,
            wallet=state.wallet,
        )

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """Open paper positions with liquidation price, PnL and attached stop / take-profit."""
        state, marks = await self._current()
        return self.public_positions(state, marks, symbol)

    def public_positions(
        self, state: PaperState, marks: dict[str, Decimal], symbol: str | None = None
    ) -> list[Position]:
        """The account API's view of the engine's positions."""
        result = []
        for sym, pos in sorted(state.positions.items()):
            if symbol is not None and sym != symbol:
                continue
            protect = {o.role: o.trigger_price for o in state.open_orders(sym) if o.trigger_price is not None}
            result.append(
                Position(
                    symbol=sym,
                    side=pos.side,
                    size=pos.size,
                    entry_price=pos.entry,
                    mark_price=marks[sym],
                    leverage=Decimal(pos.leverage),
                    liquidation_price=liquidation_price(pos, self.config.maintenance_margin).quantize(QUANTUM),
                    unrealised_pnl=unrealised(pos, marks[sym]),
                    realised_pnl=pos.realised,
                    stop_loss=protect.get(OrderRole.STOP_LOSS),
                    take_profit=protect.get(OrderRole.TAKE_PROFIT),
                    margin_mode="isolated",
                )
            )
        return result

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Resting limit, stop and take-profit orders."""
        state, _ = await self._current()
        return [to_public_order(o) for o in state.open_orders(symbol)]

    async def expired_orders(self) -> list[Order]:
        """Entries cancelled because their expiry passed (after processing the current market time), oldest first."""
        await self._current()
        async with self.sessions() as session:
            rows = await repo.list_orders(session, self.account_id, status=OrderStatus.EXPIRED.value)
        return [to_public_order(order_from_row(r)) for r in rows]

    async def place(self, intent: OrderIntent) -> PlaceResult:
        """Run the intent once; the same intent id again returns the first result (`duplicate=True`)."""
        digest = intent.content_hash()
        _, marks, rates = await self._read(intent.symbol)
        async with self._lock, self.sessions.begin() as session:
            # Lock first, then look for the intent: a second process placing the same intent waits here and
            # then finds the first one's result instead of placing it again.
            state, marks = await self._synced(session, marks, rates, intent.symbol)
            previous = await recorded_result(session, self.account_id, intent.intent_id)
            if previous is not None:
                stored_hash, result = previous
                if stored_hash != digest:
                    raise IntentConflictError()
                if changed(state):  # triggers that fired at these prices are kept even for a duplicate
                    await save_state(session, state)
                return result
            result = apply_intent(state, intent, marks, self.config)
            if marks.at is not None:
                settle_funding(state, marks.at, marks, {})  # a position opened now pays from the next funding mark
            await save_state(session, state)
            record_result(session, self.account_id, digest, result)
        return result

    async def find_intent(self, intent: OrderIntent) -> PlaceResult | None:
        """The stored result of `intent` (its orders carry the intent's client order ids), or None if it never ran."""
        async with self.sessions() as session:
            previous = await recorded_result(session, self.account_id, intent.intent_id)
        return previous[1] if previous is not None else None

    async def close(self) -> None:
        """Nothing to release (the session factory belongs to the caller)."""


def changed(state: PaperState) -> bool:
    """True when processing triggers changed something that must be written."""
    return bool(state.fills or state.touched_orders or state.touched_positions or state.payments)


async def paper_positions_bulk(accounts: list[PaperAccount]) -> dict[str, list[Position] | BaseException]:
    """Positions of many paper accounts sharing one database and market: three reads for all of them.

    Accounts whose resting orders trigger at the current prices (or that were never used) go through their
    own `positions()`, which processes and stores the fills; the rest need no write at all.
    """
    if not accounts:
        return {}
    sessions = accounts[0].sessions
    async with sessions() as session:
        states = await load_states(session, [a.account_id for a in accounts])
    symbols = sorted(
        {sym for st in states.values() for sym in (set(st.positions) | {o.symbol for o in st.open_orders()})}
    )
    marks = Marks()
    for sym in symbols:
        marks[sym], at = await accounts[0]._quote(sym)
        marks.at = at if marks.at is None else max(marks.at, at)
    out: dict[str, list[Position] | BaseException] = {}
    for account in accounts:
        state = states.get(account.account_id)
        if state is not None:
            if state.market_source not in (None, account.market_source) or (
                marks.at is not None and funding_due(state, marks.at)
            ):
                state = None  # its own read refuses another market's account, or fetches the funding rates
            else:
                mine = Marks({s: marks[s] for s in set(state.positions) | {o.symbol for o in state.open_orders()}})
                mine.at = marks.at
                account._process(state, mine, {})
        if state is None or changed(state):
            try:
                out[account.account_id] = await account.positions()
            except AccountError as exc:  # one account's refusal (another market's account) must not stop the rest
                out[account.account_id] = exc
        else:
            out[account.account_id] = account.public_positions(state, marks)
    return out
