"""A live exchange account through ccxt: keys fetched per call, reads retried, orders never blindly retried."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import ccxt

from storage.retry import RetryPolicy, retry_async
from tools.exchange.ccxt_convert import dec, to_balance, to_order, to_position
from tools.exchange.ccxt_intents import execute_intent
from tools.exchange.ccxt_profiles import PROFILES, CcxtProfile, make_exchange
from tools.exchange.client_ids import client_order_id
from tools.exchange.errors import (
    AuthenticationFailedError,
    ExchangeUnavailableError,
    OrderNotFoundError,
    OrderStatusUnknownError,
    map_ccxt_error,
)
from tools.exchange.models import Balance, IntentKind, Order, OrderIntent, OrderRole, PlaceResult, Position
from tools.market.ccxt_support import register_precisions

log = logging.getLogger(__name__)

Credentials = Mapping[str, str]
CredentialsProvider = Callable[[], Credentials | Awaitable[Credentials]]
Sleep = Callable[[float], Awaitable[None]]


# Private endpoints: four tries, half a second doubling to 8 s, exact delays (reads and rate-limited placements).
EXCHANGE_RETRY = RetryPolicy(attempts=4, base_delay_s=0.5, max_delay_s=8.0)


class CcxtAccount:
    """An `Account` on a ccxt exchange (binanceusdm, bybit, okx, bitget, blofin, deribit)."""

    simulated = False

    def __init__(
        self,
        exchange_id: str,
        credentials: CredentialsProvider,
        *,
        exchange: Any | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        precheck_duplicates: bool = True,
    ) -> None:
        self.exchange_id = exchange_id
        self.profile: CcxtProfile = PROFILES[exchange_id]
        self.exchange = exchange if exchange is not None else make_exchange(exchange_id)
        self._credentials = credentials
        self._retry = retry or EXCHANGE_RETRY
        self._sleep = sleep
        self._precheck = precheck_duplicates
        # ccxt signs with keys stored on the instance: set them only for the duration of one call.
        self._key_lock = asyncio.Lock()
        self._markets_lock = asyncio.Lock()

    # --- plumbing -------------------------------------------------------------------------------

    async def _load_credentials(self) -> Credentials:
        try:
            result = self._credentials()
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            # The provider's own error could quote the ciphertext or key material: do not chain it.
            log.error("%s: credentials could not be loaded (%s)", self.exchange_id, type(exc).__name__)
            raise AuthenticationFailedError(
                "Your exchange keys could not be read; connect the exchange again.", exchange=self.exchange_id
            ) from None
        if not result.get("apiKey") or not result.get("secret"):
            raise AuthenticationFailedError("No API key is connected for this exchange.", exchange=self.exchange_id)
        return result

    async def ensure_markets(self) -> dict[str, Any]:
        """Load the exchange's markets once (public call)."""
        async with self._markets_lock:
            if not self.exchange.markets:
                try:
                    await self.exchange.load_markets()
                except ccxt.BaseError as exc:
                    raise map_ccxt_error(exc, self.exchange_id) from exc
                register_precisions(self.exchange)  # the venue's tick and step for every price and size shown
            return self.exchange.markets

    async def _call(self, method: str, *args: Any) -> Any:
        """Run one private ccxt method with the keys present only while it runs."""
        await self.ensure_markets()
        async with self._key_lock:
            creds = await self._load_credentials()
            ex = self.exchange
            ex.apiKey, ex.secret, ex.password = creds["apiKey"], creds["secret"], creds.get("password") or ""
            try:
                return await getattr(ex, method)(*args)
            except ccxt.BaseError as exc:
                log.warning("%s.%s failed: %s", self.exchange_id, method, _redact(exc, creds))
                raise
            finally:
                ex.apiKey, ex.secret, ex.password = "", "", ""
                del creds

    async def _read(self, method: str, *args: Any) -> Any:
        """A read call, retried with backoff on network errors and rate limits."""
        try:
            return await retry_async(
                lambda: self._call(method, *args),
                self._retry,
                retry_on=lambda exc: isinstance(exc, ccxt.NetworkError),
                sleep=self._sleep,
            )
        except ccxt.BaseError as exc:
            raise map_ccxt_error(exc, self.exchange_id) from exc

    def market(self, symbol: str) -> dict[str, Any]:
        """The loaded ccxt market of `symbol` (raises InvalidOrderError when unknown)."""
        try:
            return self.exchange.market(symbol)
        except ccxt.BaseError as exc:
            raise map_ccxt_error(exc, self.exchange_id) from exc

    def contract_size(self, symbol: str) -> Decimal:
        """Base units per contract (1 on most USDT perps, e.g. 0.01 BTC on okx)."""
        market = self.market(symbol)
        if self.profile.amount_in_base:
            return Decimal(1)
        return dec(market.get("contractSize")) or Decimal(1)

    # --- reads ----------------------------------------------------------------------------------

    async def balance(self) -> Balance:
        """Margin balance in the settlement currency; unrealised PnL summed over positions."""
        raw = await self._read("fetch_balance")
        positions = [to_position(self._in_base(r)) for r in await self._read("fetch_positions", None)]
        unrealised = sum((p.unrealised_pnl or Decimal(0) for p in positions if p is not None), Decimal(0))
        return to_balance(raw, self.profile.settle, unrealised)

    async def positions(self, symbol: str | None = None) -> list[Position]:
        """Open positions, with stop / take-profit filled from open conditional orders when missing."""
        await self.ensure_markets()
        raw = await self._read("fetch_positions", [symbol] if symbol else None)
        result = [p for p in (to_position(self._in_base(r)) for r in raw) if p is not None]
        if symbol:
            result = [p for p in result if p.symbol == symbol]
        if not result or all(p.stop_loss and p.take_profit for p in result):
            return result
        protective = await self.conditional_orders(symbol)
        return [_attach_protection(p, protective) for p in result]

    async def conditional_orders(self, symbol: str | None = None) -> list[Order]:
        """Open stop-loss / take-profit (trigger) orders."""
        if self.profile.conditional_listed_with_regular:
            return [o for o in await self._regular_open_orders(symbol) if o.trigger_price is not None]
        raw = await self._read("fetch_open_orders", symbol, None, None, dict(self.profile.conditional_params))
        return [to_order(r, contract_size=self._csize(r)) for r in raw]

    async def _regular_open_orders(self, symbol: str | None) -> list[Order]:
        raw = await self._read("fetch_open_orders", symbol)
        return [to_order(_with_trigger(r), contract_size=self._csize(r)) for r in raw]

    def _in_base(self, raw: dict[str, Any]) -> dict[str, Any]:
        # ccxt fills a position's contractSize from the market; where amounts are already base units
        # (deribit linear) multiplying by it would shrink the position 1000-fold.
        return {**raw, "contractSize": 1} if self.profile.amount_in_base else raw

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders, conditional ones included."""
        regular = await self._regular_open_orders(symbol)
        if self.profile.conditional_listed_with_regular:
            return regular
        return regular + await self.conditional_orders(symbol)

    def _csize(self, raw: dict[str, Any]) -> Decimal:
        symbol = raw.get("symbol")
        if isinstance(symbol, str) and symbol in (self.exchange.markets or {}):
            return self.contract_size(symbol)
        return Decimal(1)

    # --- orders ---------------------------------------------------------------------------------

    async def find_by_client_id(self, symbol: str, client_id: str, conditional: bool) -> Order | None:
        """The order with `client_id`, or None when the exchange definitely does not have it."""
        profile = self.profile
        cond = profile.lookup_conditional_params
        extra = dict(profile.conditional_params if cond is None else cond) if conditional else {}
        lookup = profile.lookup
        if lookup == "fetch_order":
            try:
                raw = await self._read("fetch_order", None, symbol, {"clientOrderId": client_id, **extra})
            except Exception as exc:
                if _is_not_found(exc):
                    return None
                raise
            return to_order(raw, contract_size=self.contract_size(symbol), client_order_id=client_id)
        if lookup == "deribit_label":
            market = self.market(symbol)
            resp = await self._read(
                "private_get_get_order_state_by_label", {"currency": market["settleId"], "label": client_id}
            )
            found = self.exchange.parse_orders(resp.get("result") or [], market)
            return _match(found, client_id, self.contract_size(symbol), label=True)
        if self.profile.scan_filter:
            extra[self.profile.scan_filter] = client_id
        for method in self.profile.scan_methods:
            found = await self._read(method, symbol, None, None, dict(extra))
            match = _match(found, client_id, self.contract_size(symbol))
            if match is not None:
                return match
        return None

    async def submit(
        self,
        symbol: str,
        type_: str,
        side: str,
        amount: Decimal,
        price: Decimal | None,
        params: dict[str, Any],
        client_id: str,
        role: OrderRole,
    ) -> tuple[Order, bool]:
        """Create one order exactly once; returns (order, already_existed)."""
        conditional = role is not OrderRole.MAIN
        amount_text = self.exchange.amount_to_precision(symbol, float(amount))
        price_f = float(self.exchange.price_to_precision(symbol, float(price))) if price is not None else None
        params = {**params, self.profile.client_id_param: client_id}
        if conditional and self.profile.conditional_client_id_param:
            params[self.profile.conditional_client_id_param] = client_id
        csize = self.contract_size(symbol)
        if self._precheck:
            existing = await self.find_by_client_id(symbol, client_id, conditional)
            if existing is not None:
                return existing, True
        placements = 0
        rate_limited = 0
        while True:
            placements += 1
            try:
                raw = await self._call("create_order", symbol, type_, side, float(amount_text), price_f, params)
                order = to_order(raw, contract_size=csize, role=role, client_order_id=client_id)
                return _complete(order, symbol, Decimal(amount_text) * csize, params), False
            except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
                # An explicit refusal: the exchange did not take the order, so waiting and retrying is safe.
                rate_limited += 1
                if rate_limited >= self._retry.attempts:
                    raise map_ccxt_error(exc, self.exchange_id) from exc
                await self._sleep(self._retry.delay_s(rate_limited - 1))
            except ccxt.NetworkError as exc:
                # Timeout / connection loss: the order may exist. Ask the exchange before anything else.
                found = await self._reconcile(symbol, client_id, conditional, exc)
                if found is not None:
                    return found, True
                if placements >= 2:
                    raise ExchangeUnavailableError(exchange=self.exchange_id) from exc
            except ccxt.BaseError as exc:
                if _is_duplicate(exc):
                    found = await self._reconcile(symbol, client_id, conditional, exc)
                    if found is not None:
                        return found, True
                raise map_ccxt_error(exc, self.exchange_id) from exc

    async def _reconcile(self, symbol: str, client_id: str, conditional: bool, cause: Exception) -> Order | None:
        log.warning(
            "%s: create_order for %s ended with %s; looking the order up by client id %s",
            self.exchange_id,
            symbol,
            type(cause).__name__,
            client_id,
        )
        try:
            return await self.find_by_client_id(symbol, client_id, conditional)
        except ExchangeUnavailableError as exc:
            raise OrderStatusUnknownError(exchange=self.exchange_id) from exc

    async def place(self, intent: OrderIntent) -> PlaceResult:
        """Execute an approved intent (see `tools.exchange.ccxt_intents`)."""
        return await execute_intent(self, intent)

    async def find_intent(self, intent: OrderIntent) -> PlaceResult | None:
        """The order `intent` placed, looked up by its client order id (as after a timeout), or None."""
        role = _LOOKUP_ROLE.get(intent.kind)
        if role is None:
            return None  # leverage changes and cancels carry no client id, and running them again is harmless
        await self.ensure_markets()
        client_id = client_order_id(intent.intent_id, role, self.exchange_id)
        try:
            order = await self.find_by_client_id(intent.symbol, client_id, role is not OrderRole.MAIN)
        except ExchangeUnavailableError as exc:
            raise OrderStatusUnknownError(exchange=self.exchange_id) from exc
        if order is None:
            return None
        order = order.model_copy(update={"role": role})
        return PlaceResult(intent_id=intent.intent_id, kind=intent.kind, orders=[order], duplicate=True)

    async def close(self) -> None:
        """Close the ccxt HTTP session."""
        await self.exchange.close()


# The order that proves an intent reached the exchange: the main order, or the stop / target it set.
_LOOKUP_ROLE = {
    IntentKind.OPEN: OrderRole.MAIN,
    IntentKind.CLOSE: OrderRole.MAIN,
    IntentKind.SET_STOP: OrderRole.STOP_LOSS,
    IntentKind.SET_TAKE_PROFIT: OrderRole.TAKE_PROFIT,
}


def _complete(order: Order, symbol: str, amount: Decimal, params: dict[str, Any]) -> Order:
    # Several exchanges acknowledge a new order with ids only: fill in what was asked for.
    update: dict[str, Any] = {}
    if not order.symbol:
        update["symbol"] = symbol
    if order.amount is None:
        update["amount"] = amount
    if params.get("reduceOnly") and not order.reduce_only:
        update["reduce_only"] = True
    trigger = params.get("stopLossPrice") or params.get("takeProfitPrice")
    if order.trigger_price is None and trigger is not None:
        update["trigger_price"] = dec(trigger)
    return order.model_copy(update=update)


def _attach_protection(position: Position, orders: list[Order]) -> Position:
    closing = position.side.closing_side
    update: dict[str, Any] = {}
    for order in orders:
        if order.symbol != position.symbol or order.side is not closing or order.trigger_price is None:
            continue
        is_long = position.side.value == "long"
        below_entry = order.trigger_price < position.entry_price
        is_stop = order.role is OrderRole.STOP_LOSS or (order.role is OrderRole.MAIN and below_entry == is_long)
        key = "stop_loss" if is_stop else "take_profit"
        if getattr(position, key) is None and key not in update:
            update[key] = order.trigger_price
    return position.model_copy(update=update)


def _match(raw_orders: list[dict[str, Any]], client_id: str, csize: Decimal, label: bool = False) -> Order | None:
    for raw in raw_orders:
        info = raw.get("info") or {}
        cid = info.get("label") if label else raw.get("clientOrderId")
        if cid == client_id:
            return to_order(raw, contract_size=csize, client_order_id=client_id)
    return None


def _with_trigger(raw: dict[str, Any]) -> dict[str, Any]:
    # ccxt's deribit parser reads the retired `stop_price`; deribit now reports `trigger_price`.
    info = raw.get("info") or {}
    if raw.get("triggerPrice") is None and isinstance(info, dict) and info.get("trigger_price") is not None:
        return {**raw, "triggerPrice": info["trigger_price"]}
    return raw


def _is_not_found(exc: Exception) -> bool:
    return isinstance(exc, OrderNotFoundError | ccxt.OrderNotFound)


def _is_duplicate(exc: Exception) -> bool:
    text = str(exc).lower()
    return isinstance(exc, ccxt.DuplicateOrderId) or "duplicate" in text or "duplicated" in text


def _redact(exc: Exception, creds: Credentials) -> str:
    text = f"{type(exc).__name__}: {str(exc)[:300]}"
    for value in creds.values():
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text
