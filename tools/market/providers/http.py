"""What both premium providers share: typed failures, one async httpx client each, and a local rate-limit pause.

A provider's failure is a `ProviderError` (a `MarketDataError`, so its message is safe for a chat) and callers
turn it into "not available"; nothing here retries in a loop. After a 429 the client refuses locally until the
provider's Retry-After has passed, so a busy minute does not become a ban.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from tools.market.base import MarketDataError

log = logging.getLogger(__name__)
DEFAULT_PAUSE_S = 60.0  # after a 429 without Retry-After: the providers count requests per minute


class ProviderError(MarketDataError):
    """A premium provider could not answer; `user_message` says what is unavailable and why, without secrets."""


class ProviderAuthError(ProviderError):
    """The provider refused the API key (missing, wrong, or a plan without this endpoint)."""


class ProviderRateLimited(ProviderError):
    """The provider asked us to slow down; no request goes out until `retry_after_s` has passed."""

    def __init__(self, user_message: str, retry_after_s: float) -> None:
        super().__init__(user_message)
        self.retry_after_s = retry_after_s


def retry_after_of(headers: Mapping[str, str]) -> float:
    """Seconds from a Retry-After header (delta seconds); the default pause when absent or unreadable."""
    raw = headers.get("retry-after", "")
    try:
        return max(1.0, float(raw))
    except ValueError:
        return DEFAULT_PAUSE_S


class ProviderClient:
    """One keyed provider's HTTP client: GET JSON with typed failures and the local pause after a 429.

    A provider names itself (`name`), its default `base_url` and where its API key goes (`auth_headers`, or the
    query parameters of its own requests through `_key`).
    """

    name = "provider"
    base_url = ""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = api_key  # never logged: httpx logs no headers, and no URLs at INFO
        self._http = httpx.AsyncClient(
            base_url=(base_url or self.base_url).rstrip("/"),
            headers=self.auth_headers(api_key),
            timeout=timeout_s,
            transport=transport,
        )
        self._clock = clock
        self._paused_until = 0.0

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """The headers every request carries (the key, for a provider that takes it in a header)."""
        return {}

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET `path` and parse JSON; ProviderError (or its auth / rate-limit kinds) for every failure."""
        wait = self._paused_until - self._clock()
        if wait > 0:
            raise ProviderRateLimited(f"{self.name} is rate limited for another {wait:.0f} s", wait)
        try:
            response = await self._http.get(path, params=dict(params or {}))
        except httpx.TimeoutException:
            raise ProviderError(f"{self.name} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.name} is unreachable ({type(exc).__name__})") from None
        if response.status_code == 429:
            pause = retry_after_of(response.headers)
            self._paused_until = self._clock() + pause
            log.warning("%s answered 429; pausing %.0f s", self.name, pause)
            raise ProviderRateLimited(f"{self.name} is rate limited for another {pause:.0f} s", pause)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code in (401, 403):
            raise ProviderAuthError(
                f"{self.name} refused the API key ({self.error_text(data) or response.status_code})"
            )
        if response.status_code >= 400:
            raise ProviderError(f"{self.name} answered HTTP {response.status_code}: {self.error_text(data) or 'error'}")
        if data is None:
            raise ProviderError(f"{self.name} answered something that is not JSON")
        return data

    def error_text(self, data: Any) -> str:
        """The provider's own error message in a JSON error body ('' when there is none)."""
        if isinstance(data, dict):
            for key in ("msg", "message", "error"):
                if isinstance(data.get(key), str):
                    return str(data[key])[:200]
        return ""


def number(value: Any) -> float | None:
    """A provider number (they send floats, ints or numeric strings) as float; None when absent or not numeric."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None
