"""Per-exchange ccxt settings: construction options, and how conditional orders are queried and found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import ccxt.async_support as ccxt_async

from storage.exchange_ids import CCXT_EXCHANGES

Lookup = Literal["fetch_order", "scan", "deribit_label"]


@dataclass(frozen=True)
class CcxtProfile:
    """How Bastion drives one ccxt exchange for USDT (or USDC) linear perpetuals."""

    exchange_id: str
    # Options merged into ccxt's: load only linear swap markets (fewer, smaller requests).
    options: dict[str, Any] = field(default_factory=dict)
    # Name of the unified param ccxt reads the client order id from.
    client_id_param: str = "clientOrderId"
    # Extra params that make list/fetch/cancel calls address conditional (stop/take-profit) orders.
    conditional_params: dict[str, Any] = field(default_factory=lambda: {"trigger": True})
    # Params cancel_order needs for a conditional order (None: same as conditional_params).
    cancel_conditional_params: dict[str, Any] | None = None
    # Params fetch_order / the scan lists need to find a conditional order (None: same as conditional_params).
    lookup_conditional_params: dict[str, Any] | None = None
    # Extra create_order params of a stop-loss / take-profit order (e.g. which endpoint ccxt uses).
    protective_params: dict[str, Any] = field(default_factory=dict)
    # Exchange field that also carries the client id on conditional orders, when ccxt does not fill it.
    conditional_client_id_param: str | None = None
    # Order amounts are in base currency although ccxt reports a contractSize (deribit linear perps).
    amount_in_base: bool = False
    # How an order is found again by client id after an ambiguous failure.
    lookup: Lookup = "fetch_order"
    # List calls that together cover open and finished orders, for the "scan" lookup.
    scan_methods: tuple[str, ...] = ("fetch_open_orders", "fetch_closed_orders")
    # Exchange param that filters those lists by client id server-side, when there is one.
    scan_filter: str | None = None
    # Stop and take-profit can be attached to the entry order (else they are separate orders).
    attach_sl_tp: bool = True
    # Params set_leverage needs on this exchange.
    leverage_params: dict[str, Any] = field(default_factory=dict)
    # Conditional orders are listed by the same call as ordinary ones.
    conditional_listed_with_regular: bool = False
    settle: str = "USDT"


PROFILES: dict[str, CcxtProfile] = {
    "binanceusdm": CcxtProfile(
        "binanceusdm",
        options={"fetchOpenOrders": {"warnWithoutSymbol": False}},
        # Attached SL/TP is not a Binance futures feature: they are separate algo (conditional) orders.
        attach_sl_tp=False,
    ),
    "bybit": CcxtProfile(
        "bybit",
        options={"fetchMarkets": {"types": ["linear"]}, "defaultType": "swap", "defaultSubType": "linear"},
        lookup="scan",
        scan_methods=("fetch_open_orders", "fetch_canceled_and_closed_orders"),
        scan_filter="orderLinkId",
        # v5 cancels conditional linear orders by id on the ordinary endpoint.
        cancel_conditional_params={},
    ),
    "okx": CcxtProfile(
        "okx",
        options={"fetchMarkets": {"types": ["swap"]}, "defaultType": "swap"},
        # stopLossPrice makes ccxt place an okx "conditional" algo order (POST /trade/order-algo). Listing needs
        # ordType=conditional: with only trigger=True ccxt lists ordType=trigger and would miss our stops.
        conditional_params={"ordType": "conditional"},
        # ccxt only routes fetch_order (GET /trade/order-algo by algoClOrdId) and cancel (POST /trade/cancel-algos)
        # to the algo endpoints on trigger=True; ordType alone would hit the ordinary order endpoints.
        lookup_conditional_params={"trigger": True},
        cancel_conditional_params={"trigger": True},
        # ccxt sends the id as clOrdId even on order-algo, but okx documents algoClOrdId there and ccxt's
        # fetch_order looks algo orders up by algoClOrdId: send both so the lookup finds what was placed.
        conditional_client_id_param="algoClOrdId",
        # ccxt's default order tdMode is cross, so leverage is set for cross too (mgnMode=cross).
        leverage_params={"marginMode": "cross"},
    ),
    "bitget": CcxtProfile(
        "bitget",
        options={"fetchMarkets": {"types": ["swap"]}, "defaultType": "swap", "defaultSubType": "linear"},
        # stopLossPrice / takeProfitPrice become pos_loss / pos_profit orders (POST /mix/order/place-tpsl-order);
        # the plan endpoints list and cancel them under planType=profit_loss.
        conditional_params={"trigger": True, "planType": "profit_loss"},
        # There is no detail endpoint for plan orders: list pending and history, filtered by clientOid server-side
        # (canceled orders included, so a canceled order is never placed again under the same id).
        lookup="scan",
        scan_methods=("fetch_open_orders", "fetch_canceled_and_closed_orders"),
        scan_filter="clientOid",
        leverage_params={"marginMode": "cross"},
    ),
    "blofin": CcxtProfile(
        "blofin",
        options={"defaultType": "swap"},
        # Stops go to blofin's TP/SL endpoint (POST /trade/order-tpsl): ccxt lists, cancels and keeps history
        # of those with tpsl=True. Without the flag ccxt would place an algo trigger order instead, which
        # fetch_closed_orders cannot find (its conditional history is the TP/SL one).
        conditional_params={"tpsl": True},
        protective_params={"tpsl": True},
        # blofin has no fetch_order in ccxt: scan the pending and history lists.
        lookup="scan",
        leverage_params={"marginMode": "cross"},
    ),
    "deribit": CcxtProfile(
        "deribit",
        options={"defaultType": "swap"},
        client_id_param="label",
        conditional_params={},
        lookup="deribit_label",
        attach_sl_tp=False,
        conditional_listed_with_regular=True,
        # Linear (USDC) perpetual amounts are in the base coin; the instrument's contract_size is only the step.
        amount_in_base=True,
        # Deribit lists linear perpetuals in USDC, not USDT.
        settle="USDC",
    ),
}
assert set(PROFILES) == set(CCXT_EXCHANGES)


def make_exchange(exchange_id: str, *, timeout_ms: int = 10_000) -> Any:
    """A credential-less async ccxt exchange configured for linear perpetuals (keys are set per call)."""
    profile = PROFILES[exchange_id]
    klass = getattr(ccxt_async, exchange_id)
    exchange = klass({"enableRateLimit": True, "timeout": timeout_ms, "options": dict(profile.options)})
    # Currencies metadata is not needed to trade perps and needs an extra (sometimes private) call.
    exchange.has = {**exchange.has, "fetchCurrencies": False}
    return exchange
