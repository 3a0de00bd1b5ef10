"""PTB's networking backend on aiohttp: the same requests as `HTTPXRequest`, at about half its CPU per call.

python-telegram-bot lets an application bring its own `BaseRequest`. Measured against the fake Bot API, one
`sendMessage` through `HTTPXRequest` cost about 2 ms of CPU (httpcore's anyio backend re-checks every pooled
socket on each request) against under 1 ms here, and every update answered costs at least one such call.
aiohttp is already installed as ccxt's HTTP client. Keep-alive connections are pooled per bot; requests are
encoded exactly as PTB encodes them for httpx: form fields (complex values JSON-dumped by `RequestData`),
multipart/form-data with the same fields when files are uploaded.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

log = logging.getLogger(__name__)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Idle pooled connections are closed before common servers close theirs (uvicorn 5 s, nginx 75 s): a send on a
# socket the server is closing at that moment fails with ServerDisconnectedError, and the reply is lost. aiohttp's
# default of 15 s (30 s here before) lost one /price answer in the two-process test under load.
KEEPALIVE_S = 4.0


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` over one aiohttp session with a bounded keep-alive pool (HTTP/1.1)."""

    def __init__(
        self,
        connection_pool_size: int = 1,
        *,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        # One ClientTimeout per distinct set of timeouts: the default one serves almost every call.
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout in seconds."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (it must be created on the running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=KEEPALIVE_S)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _timeout(self, read: float | None, write: float | None, connect: float | None, pool: float | None) -> Any:
        key = (read, write, connect, pool)
        found = self._timeouts.get(key)
        if found is None:
            # aiohttp's `connect` covers waiting for a pooled connection and opening one, `sock_read` the wait for the
            # answer once the request is written. It has no write timeout of its own: the whole call is bounded by
            # the sum of all four instead, so a stalled upload still ends.
            waits = [t for t in (pool, connect) if t is not None]
            found = aiohttp.ClientTimeout(
                total=None if None in key else sum(t for t in key if t is not None),
                connect=sum(waits) if waits else None,
                sock_connect=connect,
                sock_read=read,
            )
            self._timeouts[key] = found
        return found

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; returns the HTTP status and the body (PTB turns errors statuses into exceptions)."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None and request_data.contains_files else None
        body: Any = None
        headers: dict[str, str] | None = None
        if files:
            form = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():  # type: ignore[union-attr]
                form.add_field(name, value)
            for name, (filename, content, mime) in files.items():
                form.add_field(name, content, filename=filename, content_type=mime)
            body = form
        elif request_data is not None and request_data.parameters:
            body, headers = request_data.url_encoded_parameters().encode(), FORM
        default_write = self._media_write_timeout if files else self._write_timeout
        timeout = self._timeout(
            self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout,
            default_write if isinstance(write_timeout, DefaultValue) else write_timeout,
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout,
            self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout,
        )
        try:
            async with session.request(method, url, data=body, headers=headers, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            # The class name helps when the message is empty (as httpx errors are named by PTB's own backend).
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err
