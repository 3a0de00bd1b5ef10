"""What Telegram does with a webhook's 200 answer, for tests and benchmarks that post updates themselves."""

from __future__ import annotations

import httpx


async def telegram_makes_the_answered_call(
    client: httpx.AsyncClient, base_url: str, token: str, response: httpx.Response
) -> None:
    """Make the Bot API call a webhook answer carries (the update's reply in the response body), if any, at the
    (fake) Bot API, as Telegram does."""
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and isinstance(body.get("method"), str):
        params = {k: v for k, v in body.items() if k != "method"}
        await client.post(f"{base_url}{token}/{body['method']}", json=params, timeout=30)
