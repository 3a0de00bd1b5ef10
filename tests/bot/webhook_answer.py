"""What Telegram does with a webhook's 200 answer, for tests and benchmarks that post updates themselves."""

from __future__ import annotations

import json
from typing import Any

import httpx


def answered_call(body: bytes) -> tuple[str, dict[str, Any]] | None:
    """The Bot API call a webhook answer's body carries (the update's reply): its method and parameters, or None."""
    try:
        call = json.loads(body)
    except ValueError:
        return None
    if isinstance(call, dict) and isinstance(call.get("method"), str):
        return call["method"], {k: v for k, v in call.items() if k != "method"}
    return None


async def telegram_makes_the_answered_call(
    client: httpx.AsyncClient, base_url: str, token: str, response: httpx.Response
) -> None:
    """Make the Bot API call a webhook answer carries (the update's reply in the response body), if any, at the
    (fake) Bot API, as Telegram does."""
    call = answered_call(response.content)
    if call is not None:
        method, params = call
        await client.post(f"{base_url}{token}/{method}", json=params, timeout=30)
