"""A pooled keep-alive connection is dropped before the server closes it, so a reply after an idle spell never
races the server's close on a reused socket (seen in the two-process test as a lost /price answer: aiohttp kept
idle connections 30 s, the server closed them after 5 s, and a send on one raised ServerDisconnectedError)."""

from __future__ import annotations

import uvicorn

from bot.telegram.request import KEEPALIVE_S


def test_the_pool_lets_go_of_idle_connections_before_common_servers_do() -> None:
    # uvicorn (the fake Bot API's server) closes an idle connection after 5 s, nginx after 75 s.
    assert 0 < KEEPALIVE_S < uvicorn.Config(app=None).timeout_keep_alive
