"""Counting points of the bot core: the metrics middleware, a counting replier and a counting outbox sender."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.api.metrics import Metrics
from bot.core.delivery import RecipientGone, RetryAfter, Sender
from bot.core.messages import ButtonPress, Outbound, parse_button

if TYPE_CHECKING:
    from bot.core.dispatcher import BotCore

Handler = Callable[[Any, dict[str, Any]], Awaitable[None]]
Middleware = Callable[[Handler, Any, dict[str, Any]], Awaitable[None]]


class LabelChildren:
    """Each Prometheus metric's child per label values, looked up once (`labels()` locks and builds keys per call).

    Bounded by what is labelled: platforms, directions, handling kinds, registered command names and "unknown".
    """

    def __init__(self) -> None:
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}

    def __call__(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, from the second time on without asking the metric."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child


class CountingReplier:
    """A replier whose sent messages count as `out` for its platform; everything else passes through."""

    def __init__(self, inner: Any, metrics: Metrics, platform: str, children: LabelChildren | None = None) -> None:
        self._inner, self._metrics, self._platform = inner, metrics, platform
        self._children = children or LabelChildren()

    async def send(self, out: Outbound) -> str | None:
        """Send through the channel and count it."""
        ref: str | None = await self._inner.send(out)
        self._children(self._metrics.messages, self._platform, "out").inc()
        return ref

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def observe(core: BotCore) -> Middleware:
    """Counts events in, commands, approval presses and errors, and times each event (no-op without metrics)."""

    children = LabelChildren()

    async def middleware(handler: Handler, event: Any, data: dict[str, Any]) -> None:
        metrics = core.metrics
        if metrics is None:
            await handler(event, data)
            return
        children(metrics.messages, event.platform, "in").inc()
        if isinstance(event, ButtonPress):
            kind = "press"
            parsed = parse_button(event.data)
            if parsed is not None:
                children(metrics.approvals, "approved" if parsed[1] else "rejected").inc()
        elif event.command is not None:
            kind = "command"
            found = core.registry.get(event.command[0])
            # Unknown names share one label: a user typing garbage must not grow the series without bound.
            children(metrics.commands, found.name if found is not None else "unknown").inc()
        else:
            kind = "text"
        data["replier"] = CountingReplier(data["replier"], metrics, event.platform, children)
        started = time.perf_counter()
        try:
            await handler(event, data)
        except Exception:
            children(metrics.errors, f"handle_{kind}").inc()
            raise
        finally:
            children(metrics.handling_latency, kind).observe(time.perf_counter() - started)

    return middleware


class CountingSender:
    """An outbox sender whose deliveries count by outcome; a platform 429 also counts as rate limited."""

    def __init__(self, inner: Sender, metrics: Metrics) -> None:
        self.inner, self.metrics = inner, metrics
        self.platform = inner.platform

    def is_group(self, recipient: str) -> bool:
        """As the wrapped sender says."""
        return self.inner.is_group(recipient)

    async def send(self, recipient: str, payload: dict[str, Any]) -> None:
        """Deliver through the wrapped sender and count the outcome."""
        outcome = "error"
        try:
            await self.inner.send(recipient, payload)
            outcome = "sent"
        except RetryAfter:
            outcome = "retry_after"
            self.metrics.rate_limited.labels(upstream=self.platform).inc()
            raise
        except RecipientGone:
            outcome = "gone"
            raise
        finally:
            self.metrics.deliveries.labels(platform=self.platform, outcome=outcome).inc()
            if outcome == "sent":
                self.metrics.messages.labels(platform=self.platform, direction="out").inc()
