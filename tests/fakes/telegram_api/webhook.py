"""setWebhook, deleteWebhook, getWebhookInfo, and posting updates to the bot's webhook."""

from __future__ import annotations

import copy
import json
import re
import time
from typing import Any

import httpx

from tests.fakes.telegram_api.protocol import ApiCall, ApiError, Handler, Upload, bad
from tests.fakes.telegram_api.updates import UpdateQueue, is_allowed
from tests.fakes.telegram_api.wire import _coerce, int_param

WEBHOOK_TIMEOUT_S = 10.0
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class Webhook(UpdateQueue):
    """Routes each new update to the getUpdates queue or, once a webhook is set, to a worker that POSTs it."""

    def _webhook_methods(self) -> dict[str, Handler]:
        return {
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
        }

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an Update for getUpdates, or POST it to the webhook when one is set; assigns update_id if missing."""
        with self._lock:
            if "update_id" not in update:
                update["update_id"] = self._next_update_id
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
            stored = copy.deepcopy(update)
            webhook = self.webhook is not None
            if not webhook:
                self._updates.append(stored)
        if webhook:
            self._schedule_delivery(stored)
        else:
            self._wake_pollers()
        return update

    def _schedule_delivery(self, update: dict[str, Any]) -> None:
        loop, queue = self._loop, self._delivery_queue
        if loop is None or queue is None:
            raise RuntimeError("a webhook is set but the fake Telegram server is not running")
        loop.call_soon_threadsafe(queue.put_nowait, update)

    async def _deliver_webhooks(self, client: httpx.AsyncClient) -> None:
        assert self._delivery_queue is not None
        while True:
            update = await self._delivery_queue.get()
            with self._lock:
                hook = dict(self.webhook) if self.webhook is not None else None
                allowed = self._allowed_updates
            if hook is None or not is_allowed(update, allowed):
                continue
            headers = {"Content-Type": "application/json"}
            if hook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            try:
                response = await client.post(hook["url"], content=json.dumps(update).encode(), headers=headers)
                status, error = response.status_code, f"Wrong response from the webhook: {response.status_code}"
            except httpx.HTTPError as exc:
                status, error = 0, f"Connection failed: {type(exc).__name__}"
            with self._lock:
                self.webhook_deliveries.append(status)
                if not 200 <= status < 300:
                    self._webhook_error = (int(time.time()), error)
            self._notify()
            if 200 <= status < 300:  # after the delivery counts as done, as Telegram makes the call it answered
                self._make_response_call(response.content)

    def _make_response_call(self, body: bytes) -> None:
        """Make the one Bot API call a webhook answered with (`{"method": ..., params}`), as Telegram does: its
        result and any error go nowhere."""
        try:
            data = json.loads(body)
        except ValueError:
            return
        if not isinstance(data, dict) or not isinstance(data.get("method"), str):
            return
        method = data.pop("method")
        params = {name: _coerce(name, value) for name, value in data.items()}
        self.calls.append(call := ApiCall(method, params, time.monotonic()))
        handler = self._methods.get(method.lower())
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            handler(params, {}, call.at)
            call.status = 200
        except ApiError as exc:
            call.status = exc.status
        self._notify(params.get("chat_id"))

    def _set_webhook(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(params, files, at)
        if not url.startswith(("http://", "https://")):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.match(str(secret)):
            raise bad("secret token contains unallowed characters")
        with self._lock:
            self.webhook = {"url": url, "secret_token": secret}
            self._webhook_max_connections = int_param(params.get("max_connections") or 40, "max_connections")
            if params.get("allowed_updates") is not None:
                self._allowed_updates = list(params["allowed_updates"]) or None
            pending = [] if params.get("drop_pending_updates") else self._updates
            self._updates = []
            self._webhook_error = None
        assert self._changed is not None
        self._changed.set()  # long polls in progress end with 409
        for update in pending:
            self._schedule_delivery(update)
        return True

    def _delete_webhook(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> bool:
        with self._lock:
            self.webhook = None
            self._webhook_error = None
            if params.get("drop_pending_updates"):
                self._updates = []
        return True

    def _get_webhook_info(self, params: dict[str, Any], files: dict[str, Upload], at: float) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {
                "url": self.webhook["url"] if self.webhook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(self._updates),
            }
            if self.webhook:
                info["max_connections"] = self._webhook_max_connections
                info["ip_address"] = "127.0.0.1"
                if self._allowed_updates:
                    info["allowed_updates"] = list(self._allowed_updates)
                if self._webhook_error:
                    info["last_error_date"], info["last_error_message"] = self._webhook_error
        return info
