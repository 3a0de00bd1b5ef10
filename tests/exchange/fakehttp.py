"""Offline ccxt: replace `exchange.fetch` with recorded responses and capture every outgoing request.

Fixtures follow the shape of ccxt's static tests (`httpResponse` bodies keyed by url fragment,
expected requests with `url` / `input` / `output`). Error bodies go through the exchange's own
`handle_errors`, so ccxt's real error mapping runs too.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt

from tools.exchange.ccxt_profiles import make_exchange

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Captured:
    """One request ccxt tried to send."""

    method: str
    url: str
    headers: dict[str, Any]
    body: str | None

    @property
    def path(self) -> str:
        """URL path without the query string."""
        return urlsplit(self.url).path

    @property
    def params(self) -> dict[str, Any]:
        """Query and body parameters merged (JSON or urlencoded body)."""
        out: dict[str, Any] = dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))
        if self.body:
            try:
                decoded = json.loads(self.body)
            except ValueError:
                decoded = dict(parse_qsl(self.body, keep_blank_values=True))
            if isinstance(decoded, dict):
                out.update(decoded)
            else:
                out["__list__"] = decoded
        # deribit sends JSON-RPC style params inside the query of a GET
        return out


@dataclass
class Route:
    """A url fragment (and method) answered by a queue of responses; the last one repeats."""

    method: str
    fragment: str
    responses: list[Any]
    status: int = 200
    calls: int = 0

    def next(self) -> Any:
        """The next response (an exception instance is raised instead)."""
        idx = min(self.calls, len(self.responses) - 1)
        self.calls += 1
        return self.responses[idx]


@dataclass
class HttpError:
    """An HTTP error response carrying the exchange's JSON error body."""

    status: int
    body: Any


@dataclass
class FakeHttp:
    """Routes + a log of captured requests for one ccxt exchange instance."""

    exchange: Any
    routes: list[Route] = field(default_factory=list)
    requests: list[Captured] = field(default_factory=list)

    def add(self, method: str, fragment: str, *responses: Any) -> Route:
        """Answer `method` requests whose url contains `fragment`; newest route wins on overlap."""
        route = Route(method.upper(), fragment, list(responses))
        self.routes.insert(0, route)
        return route

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        """Stand-in for ccxt's `fetch`: record, then answer from the routes."""
        self.requests.append(Captured(method.upper(), url, dict(headers or {}), body))
        for route in self.routes:
            if route.method == method.upper() and route.fragment in url:
                response = route.next()
                break
        else:
            raise AssertionError(f"unexpected request {method} {url}")
        if isinstance(response, BaseException):
            raise response
        if isinstance(response, HttpError):
            text = json.dumps(response.body)
            self.exchange.handle_errors(response.status, "error", url, method, {}, text, response.body, headers, body)
            self.exchange.handle_http_status_code(response.status, "error", url, method, text)
            raise ccxt.ExchangeError(text)
        return copy.deepcopy(response)

    def find(self, method: str, fragment: str) -> list[Captured]:
        """Captured requests matching method and url fragment, oldest first."""
        return [r for r in self.requests if r.method == method.upper() and fragment in r.url]


def load_fixture(exchange_id: str) -> dict[str, Any]:
    """The recorded responses and expected requests of one exchange."""
    return json.loads((FIXTURES / f"{exchange_id}.json").read_text())


def offline_exchange(exchange_id: str) -> tuple[Any, FakeHttp, dict[str, Any]]:
    """A ccxt exchange whose network layer is the fixture of `exchange_id`."""
    exchange = make_exchange(exchange_id)
    exchange.enableRateLimit = False
    fixture = load_fixture(exchange_id)
    http = FakeHttp(exchange)
    for entry in fixture["httpResponses"]:
        body = entry["httpResponse"]
        if "status" in entry:
            body = HttpError(entry["status"], body)
        http.add(entry.get("method", "GET"), entry["url"], body)
    exchange.fetch = http.fetch
    return exchange, http, fixture
