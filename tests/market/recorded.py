"""ccxt exchanges whose network `fetch` serves recorded REST responses, so ccxt's real parsers run offline.

Fixture files follow ccxt's static response tests (`ts/src/test/static/response/<id>.json`):
`{"exchange", "methods": {name: [{"description", "method", "input", "url", "httpResponse"}]}}`.
Each entry's `url` says which request it answers; a request takes the entry with the same path
whose query parameters it contains, the most specific first.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt.async_support as ccxt_async

FIXTURES = Path(__file__).parent / "fixtures"
# 2025-02-20 12:30 UTC: the moment the fixtures were "recorded" (the 12:00 1h candle is forming).
RECORDED_AT_MS = 1_740_054_600_000


@dataclass
class Route:
    """One recorded response."""

    path: str
    params: dict[str, str]
    body: Any
    method: str


@dataclass
class Recorder:
    """The fake transport: answers from routes, logs every request, raises queued faults first."""

    routes: list[Route]
    requests: list[str] = field(default_factory=list)
    faults: deque[tuple[str, BaseException]] = field(default_factory=deque)
    before: Callable[[str], Any] | None = None

    def fail_next(self, exc: BaseException, path_contains: str = "") -> None:
        """Raise `exc` on the next request whose URL contains `path_contains`."""
        self.faults.append((path_contains, exc))

    def count(self, path_contains: str) -> int:
        """Requests made so far whose URL contains `path_contains`."""
        return sum(path_contains in url for url in self.requests)

    async def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        """Stands in for ccxt's HTTP `fetch`: returns the decoded JSON body of the matching route."""
        self.requests.append(url)
        if self.before is not None:
            await self.before(url)
        for i, (fragment, exc) in enumerate(self.faults):
            if fragment in url:
                del self.faults[i]
                raise exc
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query))
        candidates = [
            r for r in self.routes if r.path == parts.path and all(params.get(k) == v for k, v in r.params.items())
        ]
        if not candidates:
            raise AssertionError(f"no recorded response for {method} {url}")
        best = max(candidates, key=lambda r: len(r.params))
        return copy.deepcopy(best.body)


def load_routes(exchange_id: str) -> list[Route]:
    """Every recorded response of an exchange's fixture file."""
    data = json.loads((FIXTURES / f"{exchange_id}.json").read_text())
    assert data["exchange"] == exchange_id
    routes = []
    for entries in data["methods"].values():
        for entry in entries:
            parts = urlsplit(entry["url"])
            routes.append(Route(parts.path, dict(parse_qsl(parts.query)), entry["httpResponse"], entry["method"]))
    return routes


def recorded_exchange(exchange_id: str, **config: Any) -> tuple[ccxt_async.Exchange, Recorder]:
    """A real ccxt async exchange (rate limiting on) whose network layer is the recorder."""
    from tools.market.ccxt_support import make_exchange

    exchange = make_exchange(exchange_id)
    exchange.timeout_on_exit = 0  # no aiohttp session to let settle
    for key, value in config.items():
        setattr(exchange, key, value)
    recorder = Recorder(load_routes(exchange_id))
    exchange.fetch = recorder.fetch
    return exchange, recorder
