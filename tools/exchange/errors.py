"""Typed account errors with messages safe to show a user, and the mapping from ccxt's exceptions."""

from __future__ import annotations

import ccxt


class AccountError(Exception):
    """Base of every account error; `user_message` is safe to show in a chat (no secrets, no traces)."""

    default_message = "The exchange request failed."

    def __init__(self, user_message: str | None = None, *, exchange: str | None = None) -> None:
        self.user_message = user_message or self.default_message
        self.exchange = exchange
        super().__init__(self.user_message)


class InsufficientFundsError(AccountError):
    """Not enough margin for the order."""

    default_message = "Insufficient funds: the account does not have enough free margin for this order."


class InvalidOrderError(AccountError):
    """The order was refused as invalid (below minimum size, bad price, no position to reduce...)."""

    default_message = "The exchange refused the order as invalid (check size, price and symbol)."


class BelowMinimumError(InvalidOrderError):
    """The order size is below the market's minimum after rounding to its precision."""

    default_message = "The order size is below the exchange's minimum for this market."


class RateLimitedError(AccountError):
    """The exchange is throttling requests."""

    default_message = "The exchange is rate limiting requests; try again in a minute."


class AuthenticationFailedError(AccountError):
    """API key missing, wrong, expired, or lacking permission."""

    default_message = (
        "The exchange rejected the API credentials. Check that the key is correct, not expired, "
        "IP-whitelisted if required, and has trading permission."
    )


class ExchangeUnavailableError(AccountError):
    """The exchange could not be reached or is under maintenance."""

    default_message = "The exchange is unavailable right now (network error or maintenance)."


class OrderStatusUnknownError(ExchangeUnavailableError):
    """An order may or may not have been placed, and the exchange could not be asked which."""

    default_message = (
        "The exchange did not confirm the order and could not be reached to check it. "
        "Look at your open orders and positions before trying again."
    )


class OrderNotFoundError(AccountError):
    """No such order."""

    default_message = "The order was not found (it may already be filled or canceled)."


class NoPositionError(InvalidOrderError):
    """A close / stop / take-profit intent found no open position on the symbol."""

    default_message = "There is no open position on this symbol."


class IntentConflictError(AccountError):
    """The same intent id arrived with different content; refusing protects against tampering."""

    default_message = "This confirmation was already used for a different order."


class UnsupportedError(AccountError):
    """The exchange or account does not support the requested operation."""

    default_message = "This exchange does not support that operation."


class ExchangeRejectedError(AccountError):
    """Any other refusal by the exchange."""

    default_message = "The exchange rejected the request."


# Most specific first: ccxt's classes form a hierarchy (PermissionDenied is an AuthenticationError...).
_MAPPING: tuple[tuple[type[Exception], type[AccountError]], ...] = (
    (ccxt.InsufficientFunds, InsufficientFundsError),
    (ccxt.OrderNotFound, OrderNotFoundError),
    (ccxt.InvalidOrder, InvalidOrderError),
    (ccxt.BadSymbol, InvalidOrderError),
    (ccxt.AuthenticationError, AuthenticationFailedError),
    (ccxt.RateLimitExceeded, RateLimitedError),
    (ccxt.DDoSProtection, RateLimitedError),
    (ccxt.NetworkError, ExchangeUnavailableError),
    (ccxt.NotSupported, UnsupportedError),
)


def map_ccxt_error(exc: Exception, exchange: str | None = None) -> AccountError:
    """Translate a ccxt exception into the account error a user should see."""
    if isinstance(exc, AccountError):
        return exc
    for ccxt_type, domain_type in _MAPPING:
        if isinstance(exc, ccxt_type):
            return domain_type(exchange=exchange)
    return ExchangeRejectedError(exchange=exchange)
