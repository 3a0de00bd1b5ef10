"""Operator metrics: one `Metrics` object per process with its own CollectorRegistry, injected where things happen.

No module-global registry: `bastion serve` builds one `Metrics` and hands it to the API, the bot core, the
delivery senders, the executor and the model client; tests build their own and read exactly what they caused.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: a slash command answers in milliseconds, a model turn in seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
CYCLE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The Prometheus instruments of one process, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "bastion_messages", "Chat messages by platform and direction (in: received, out: sent)",
            ["platform", "direction"], registry=r,
        )  # fmt: skip
        self.commands = Counter("bastion_commands", "Slash commands handled", ["command"], registry=r)
        self.approvals = Counter(
            "bastion_approvals", "Approval buttons by outcome (approved, rejected, expired)", ["outcome"], registry=r
        )
        self.orders = Counter(
            "bastion_orders", "Order executions by outcome (placed, refused, failed, duplicate, ...)", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.outbox_depth = Gauge("bastion_outbox_depth", "Outbox rows waiting for delivery", registry=r)
        self.deliveries = Counter(
            "bastion_outbox_deliveries", "Outbox deliveries by platform and outcome (sent, retry_after, gone, error)",
            ["platform", "outcome"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "bastion_rate_limited", "HTTP 429 answers received, by upstream (telegram, discord, model, ...)",
            ["upstream"], registry=r,
        )  # fmt: skip
        self.model_calls = Counter(
            "bastion_model_calls", "Language model calls by kind and outcome", ["kind", "outcome"], registry=r
        )
        self.model_latency = Histogram(
            "bastion_model_latency_seconds", "Language model call duration", ["kind"], buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.errors = Counter("bastion_errors", "Errors by where they happened", ["where"], registry=r)
        self.handling_latency = Histogram(
            "bastion_handling_latency_seconds", "Time to handle one chat event, by kind (command, text, press)",
            ["kind"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.monitor_cycle = Histogram(
            "bastion_monitor_cycle_seconds", "Duration of one position monitor cycle", buckets=CYCLE_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.signals = Counter("bastion_signals", "Signal webhook requests by outcome", ["outcome"], registry=r)
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    def on_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run `refresh` before each scrape (gauges read from the database, e.g. the outbox depth)."""
        self._refreshers.append(refresh)

    async def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, after refreshing the gauges; a failed refresh is an error."""
        for refresh in self._refreshers:
            try:
                await refresh()
            except Exception:
                self.errors.labels(where="metrics_refresh").inc()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when never observed): for tests and the CLI."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def observe_async(self, fn: Callable[..., Awaitable[Any]], kind: str) -> Callable[..., Awaitable[Any]]:
        """`fn` wrapped to count model calls of `kind` by outcome (ok / error) and time them."""

        @functools.wraps(fn)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                self._model_failed(kind, exc)
                raise
            finally:
                self.model_latency.labels(kind=kind).observe(time.perf_counter() - started)
            self.model_calls.labels(kind=kind, outcome="ok").inc()
            return result

        return wrapped

    def observe_stream(self, fn: Callable[..., AsyncIterator[Any]], kind: str) -> Callable[..., AsyncIterator[Any]]:
        """An async-generator `fn` wrapped like `observe_async` (timed to its last chunk)."""

        @functools.wraps(fn)
        async def wrapped(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            started = time.perf_counter()
            try:
                async for chunk in fn(*args, **kwargs):
                    yield chunk
            except Exception as exc:
                self._model_failed(kind, exc)
                raise
            finally:
                self.model_latency.labels(kind=kind).observe(time.perf_counter() - started)
            self.model_calls.labels(kind=kind, outcome="ok").inc()

        return wrapped

    def _model_failed(self, kind: str, exc: BaseException) -> None:
        self.model_calls.labels(kind=kind, outcome="error").inc()
        if getattr(exc, "status_code", None) == 429:
            self.rate_limited.labels(upstream="model").inc()

    def instrument_model_client(self, client: Any) -> None:
        """Count and time the calls of an `inference.ModelClient` (complete, complete_json, stream)."""
        client.complete = self.observe_async(client.complete, "complete")
        client.complete_json = self.observe_async(client.complete_json, "complete_json")
        client.stream = self.observe_stream(client.stream, "stream")

    def instrument_executor(self, executor: Any) -> None:
        """Count every execution outcome of an `engine.execution.Executor` (its two public entry points)."""
        for name in ("execute", "execute_approved_intent"):
            setattr(executor, name, self._count_outcomes(getattr(executor, name)))

    def _count_outcomes(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(fn)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                outcome = await fn(*args, **kwargs)
            except Exception:
                self.orders.labels(outcome="error").inc()
                raise
            self.orders.labels(outcome=str(outcome.status)).inc()
            return outcome

        return wrapped


class ModelCallCounter(BaseCallbackHandler):
    """A LangChain callback counting and timing the analyst's chat-model calls into `Metrics`."""

    def __init__(self, metrics: Metrics, kind: str = "analyst") -> None:
        self.metrics, self.kind = metrics, kind
        self._started: dict[UUID, float] = {}

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Remember when the call started."""
        self._started[run_id] = time.perf_counter()

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Count a call that answered."""
        self._finish(run_id, "ok")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Count a failed call (a 429 also as rate limited)."""
        self._finish(run_id, "error")
        if getattr(error, "status_code", None) == 429:
            self.metrics.rate_limited.labels(upstream="model").inc()

    def _finish(self, run_id: UUID, outcome: str) -> None:
        started = self._started.pop(run_id, None)
        self.metrics.model_calls.labels(kind=self.kind, outcome=outcome).inc()
        if started is not None:
            self.metrics.model_latency.labels(kind=self.kind).observe(time.perf_counter() - started)
