"""Runs a fake server's ASGI app with uvicorn on a free loopback port in a background thread (own event loop)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

STARTUP_TIMEOUT_S = 10.0


class QuickExitServer(uvicorn.Server):
    """uvicorn server that exits as soon as `stop_event` is set, instead of on its next 0.1 s tick."""

    stop_event: asyncio.Event | None = None

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default headers, as uvicorn's own loop does first
        assert self.stop_event is not None
        await self.stop_event.wait()


Serve = Callable[[QuickExitServer, socket.socket], Coroutine[Any, Any, None]]


def serve_in_thread(app: Any, name: str, serve: Serve) -> tuple[QuickExitServer, threading.Thread, int]:
    """Start `serve(server, socket)` on a new loop in a daemon thread; returns once it accepts connections.

    `serve` must set `server.stop_event` and then await `server.serve(sockets=[sock])`.
    """
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so, and without it every
    # answer waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    # No proxy headers: nothing stands in front of a fake, and the middleware is work on every request.
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1, proxy_headers=False
    )
    server = QuickExitServer(config)
    thread = threading.Thread(target=lambda: asyncio.run(serve(server, sock)), name=f"{name}-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.005)
    return server, thread, port
