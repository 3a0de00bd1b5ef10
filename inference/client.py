"""Async client of an OpenAI-compatible model server (vLLM, llama.cpp, Ollama), one object per process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import openai
from pydantic import BaseModel

from inference.completion import Completion, to_completion
from inference.config import ENV_PREFIX, MODEL_RETRY, EndpointSettings, Task, TaskConfig, task_configs
from inference.errors import InvalidModelOutput, ModelConfigError, ModelTimeout, ModelUnavailable
from inference.structured import parse_model_output, response_format_for
from storage.retry import RetryPolicy, retry_async

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Message = Mapping[str, Any]
Sleep = Callable[[float], Awaitable[None]]


class ModelClient:
    """Chat completions per task ("analyst" | "risk") with typed errors and our own retry policy.

    Retries: only connection failures (refused, reset, dropped before an answer) are retried, with exponential
    backoff, because they are transient (a vLLM restart). Not retried: timeouts (the caller, e.g. the risk
    monitor, has a deadline, and the timed-out request may still be running on the GPU), HTTP 5xx and 429 (an
    overloaded or crashed engine is not helped by a retry storm from every monitored position; the next monitor
    cycle asks again) and any other 4xx (the same request would fail the same way).
    """

    def __init__(
        self,
        settings: EndpointSettings,
        *,
        tasks: Mapping[Task, TaskConfig] | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if settings.base_url is None:
            raise ModelConfigError(
                "No language model is configured; slash commands still work.",
                detail=f"{ENV_PREFIX}BASE_URL is empty, so the offline model answers",
            )
        self._tasks: dict[Task, TaskConfig] = dict(tasks or task_configs(settings))
        self._retry = retry or MODEL_RETRY
        self._sleep = sleep
        parts = urlsplit(settings.base_url)
        self._server = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self._openai = openai.AsyncOpenAI(
            base_url=settings.base_url,
            # vLLM without --api-key accepts anything, but the SDK refuses an empty key.
            api_key=settings.api_key.get_secret_value() or "EMPTY",
            max_retries=0,
            timeout=max(cfg.timeout_s for cfg in self._tasks.values()),
        )

    def __repr__(self) -> str:
        return f"ModelClient(server={self._server!r}, tasks={sorted(self._tasks)})"

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._openai.close()

    def config(self, task: Task) -> TaskConfig:
        """The model name, temperature, max tokens and timeout of `task`."""
        try:
            return self._tasks[task]
        except KeyError:
            raise ModelConfigError(
                "The language model is not set up for this request.", detail=f"unknown task {task!r}"
            ) from None

    async def complete(
        self,
        task: Task,
        messages: Sequence[Message],
        *,
        response_schema: dict[str, Any] | type[BaseModel] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> Completion:
        """One answer to `messages`; JSON constrained by `response_schema`, tool calls offered from `tools`."""
        cfg = self.config(task)
        extra: dict[str, Any] = {}
        if response_schema is not None:
            extra["response_format"] = response_format_for(response_schema)
        if tools:
            extra["tools"] = list(tools)
        if tool_choice is not None:
            extra["tool_choice"] = tool_choice
        started = time.perf_counter()
        response: ChatCompletion = await self._with_retries(
            task,
            cfg,
            lambda: self._openai.chat.completions.create(
                model=cfg.model,
                messages=_messages(messages),
                temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
                timeout=cfg.timeout_s,
                **extra,
            ),
        )
        completion = to_completion(response, time.perf_counter() - started, model=cfg.model)
        log.debug(
            "model %s answered task=%s in %.3fs finish=%s tool_calls=%d",
            cfg.model,
            task,
            completion.latency_s,
            completion.finish_reason,
            len(completion.tool_calls),
        )
        return completion

    async def complete_json(self, task: Task, messages: Sequence[Message], model_cls: type[M]) -> M:
        """An answer constrained to `model_cls`'s JSON schema, validated; InvalidModelOutput when it does not fit."""
        completion = await self.complete(task, messages, response_schema=model_cls)
        try:
            return parse_model_output(completion.text, model_cls, finish_reason=completion.finish_reason)
        except InvalidModelOutput as exc:
            log.warning(
                "model %s gave invalid %s: %s; raw=%r", completion.model, model_cls.__name__, exc.detail, exc.raw
            )
            raise

    async def stream(self, task: Task, messages: Sequence[Message]) -> AsyncIterator[str]:
        """The answer's text deltas as they arrive (tool calls are not streamed here)."""
        cfg = self.config(task)
        chunks = await self._with_retries(
            task,
            cfg,
            lambda: self._openai.chat.completions.create(
                model=cfg.model,
                messages=_messages(messages),
                temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
                timeout=cfg.timeout_s,
                stream=True,
            ),
        )
        try:
            async for chunk in chunks:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
        # Text was already handed out, so a failure mid-stream is reported, never retried.
        except openai.APITimeoutError as exc:
            raise self._timeout(cfg, exc) from None
        except openai.APIError as exc:
            raise self._unavailable(
                cfg, exc, message="The language model stopped answering mid-way; try again."
            ) from None
        finally:
            await chunks.close()

    async def _with_retries(self, task: Task, cfg: TaskConfig, call: Callable[[], Awaitable[T]]) -> T:
        attempts = max(1, self._retry.attempts)

        async def attempt() -> T:
            # The SDK timeout bounds each network phase; this bounds the whole attempt.
            async with asyncio.timeout(cfg.timeout_s):
                return await call()

        def note(retry: int, exc: BaseException, delay: float) -> None:
            log.warning(
                "model server %s unreachable (task=%s, attempt %d/%d): %s; retrying in %.2fs",
                self._server,
                task,
                retry + 1,
                attempts,
                _cause(exc),
                delay,
            )

        try:
            return await retry_async(
                attempt, self._retry, retry_on=_connection_failed, on_retry=note, sleep=self._sleep
            )
        except (openai.APITimeoutError, TimeoutError) as exc:
            raise self._timeout(cfg, exc) from None
        except openai.APIConnectionError as exc:
            raise self._unavailable(cfg, exc, attempts=attempts) from None
        except openai.APIStatusError as exc:
            raise self._status_error(cfg, exc) from None
        except openai.APIError as exc:
            raise self._unavailable(cfg, exc) from None

    def _timeout(self, cfg: TaskConfig, exc: BaseException) -> ModelTimeout:
        return ModelTimeout(
            f"The language model did not answer within {cfg.timeout_s:g} seconds.",
            detail=f"{self._server} model={cfg.model}: {type(exc).__name__} (timeout {ENV_PREFIX}TIMEOUT_S)",
        )

    def _unavailable(
        self, cfg: TaskConfig, exc: BaseException, *, attempts: int = 1, message: str | None = None
    ) -> ModelUnavailable:
        return ModelUnavailable(
            message or "The language model is not reachable right now; slash commands still work.",
            detail=f"{self._server} model={cfg.model} after {attempts} attempt(s): {_cause(exc)}",
        )

    def _status_error(self, cfg: TaskConfig, exc: openai.APIStatusError) -> ModelUnavailable | ModelConfigError:
        status = exc.status_code
        detail = f"{self._server} model={cfg.model} HTTP {status}: {exc.message[:500]}"
        if status in (401, 403):
            return ModelConfigError(
                "The language model server rejected our credentials.",
                detail=f"{detail} (check {ENV_PREFIX}API_KEY)",
                status_code=status,
            )
        if status == 404:
            return ModelConfigError(
                "The language model is misconfigured.",
                detail=f"{detail} (served model name {cfg.model_setting}={cfg.model!r}, or {ENV_PREFIX}BASE_URL)",
                status_code=status,
            )
        if status == 429:
            return ModelUnavailable("The language model is busy; try again shortly.", detail=detail, status_code=status)
        if status >= 500:
            return ModelUnavailable(
                "The language model failed to answer; try again shortly.", detail=detail, status_code=status
            )
        return ModelConfigError("The language model refused the request.", detail=detail, status_code=status)


def _messages(messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    # Plain dicts in the OpenAI message shape; the server validates them.
    return cast("list[ChatCompletionMessageParam]", list(messages))


def _connection_failed(exc: BaseException) -> bool:
    """Retried: the connection failed before an answer. A timeout (a subclass in the SDK) is not: see ModelClient."""
    return isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError)


def _cause(exc: BaseException) -> str:
    # The SDK's "Connection error." hides the useful part (refused, DNS, reset) in the chained exception.
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    return f"{type(root).__name__}: {root}" if root is not exc else f"{type(exc).__name__}: {exc}"
