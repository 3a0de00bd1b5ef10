"""Endpoint check for operators: is the model server reachable, does it accept our key, does it serve our models."""

from __future__ import annotations

import socket
import time
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field

from inference.config import ENV_PREFIX, EndpointSettings

HealthStatus = Literal["ok", "not_configured", "unreachable", "unauthorized", "model_missing", "error"]


class HealthReport(BaseModel):
    """Outcome of an endpoint check, with a plain-words explanation of what to fix."""

    ok: bool
    status: HealthStatus
    message: str
    base_url: str | None = None
    served_models: list[str] = Field(default_factory=list)
    latency_ms: float | None = None
    notes: list[str] = Field(default_factory=list)


def server_root(base_url: str) -> str:
    """The server root of an OpenAI base URL: vLLM serves /health there, not under /v1."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


async def check_endpoint(settings: EndpointSettings, *, timeout_s: float = 5.0) -> HealthReport:
    """Call /health and /v1/models of the configured endpoint and explain what, if anything, is wrong."""
    if settings.base_url is None:
        return HealthReport(
            ok=False,
            status="not_configured",
            message=(
                f"No model endpoint is configured ({ENV_PREFIX}BASE_URL is empty): the offline model answers, "
                "and slash commands and the deterministic engines work fully."
            ),
        )
    base = settings.base_url
    where = _host_port(base)
    key = settings.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    notes: list[str] = []

    def report(
        status: HealthStatus, message: str, *, served_models: list[str] | None = None, latency_ms: float | None = None
    ) -> HealthReport:
        return HealthReport(
            ok=status == "ok",
            status=status,
            message=message,
            base_url=base,
            notes=notes,
            served_models=served_models or [],
            latency_ms=latency_ms,
        )

    async with httpx.AsyncClient(timeout=timeout_s) as http:
        try:
            health = await http.get(f"{server_root(base)}/health")
            started = time.perf_counter()
            models = await http.get(f"{base}/models", headers=headers)
            latency_ms = (time.perf_counter() - started) * 1000
        except httpx.TimeoutException:
            return report("unreachable", f"The model server at {where} did not answer within {timeout_s:g} s.")
        except httpx.TransportError as exc:
            return report("unreachable", _unreachable_message(base, where, exc))

    if health.status_code == 404:
        notes.append("The server has no /health endpoint (fine for llama.cpp or Ollama; vLLM has one).")
    elif health.status_code != 200:
        notes.append(f"/health answered HTTP {health.status_code}: the inference engine reports it is not healthy.")

    if models.status_code in (401, 403):
        which = "rejected the API key" if key else "requires an API key, and none is set"
        return report(
            "unauthorized",
            f"The model server at {where} {which} (HTTP {models.status_code}). Set {ENV_PREFIX}API_KEY to the key "
            "the server was started with (vLLM: --api-key).",
        )
    if models.status_code == 404:
        return report(
            "error",
            f"The model server at {where} has no {urlsplit(base).path or '/'}/models: {ENV_PREFIX}BASE_URL should "
            "be the OpenAI base URL, usually ending in /v1 (e.g. http://gpu-host:8000/v1).",
        )
    if models.status_code != 200:
        return report("error", f"The model server at {where} answered /models with HTTP {models.status_code}.")
    try:
        served = [str(m["id"]) for m in models.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return report("error", f"The server at {where} answered /models with something that is not a model list.")

    missing = [
        (f"{ENV_PREFIX}{setting}", name)
        for setting, name in (("ANALYST_MODEL", settings.analyst_model), ("RISK_MODEL", settings.risk_model))
        if name not in served
    ]
    if missing:
        wanted = "; ".join(f"{var}={name!r}" for var, name in missing)
        return report(
            "model_missing",
            f"The model server at {where} does not serve {wanted}. It serves: {', '.join(served) or 'nothing'}. "
            f"Set {' and '.join(var for var, _ in missing)} to one of these, or start vLLM with "
            "--served-model-name matching the setting.",
            served_models=served,
            latency_ms=latency_ms,
        )
    if health.status_code >= 500:
        return report(
            "error",
            f"The model server at {where} lists its models but its engine is unhealthy (/health HTTP "
            f"{health.status_code}); restart vLLM.",
            served_models=served,
            latency_ms=latency_ms,
        )
    names = sorted({settings.analyst_model, settings.risk_model})
    return report(
        "ok",
        f"Model endpoint OK at {where}: serves {', '.join(names)}; /models answered in {latency_ms:.0f} ms.",
        served_models=served,
        latency_ms=latency_ms,
    )


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _unreachable_message(base: str, where: str, exc: BaseException) -> str:
    root: BaseException | None = exc
    while root is not None:
        if isinstance(root, socket.gaierror):
            host = urlsplit(base).hostname
            return f"The model server host {host!r} could not be resolved; check the host name in {ENV_PREFIX}BASE_URL."
        root = root.__cause__ or root.__context__
    return (
        f"Cannot reach the model server at {where} ({type(exc).__name__}). Check that it is running and that "
        f"{ENV_PREFIX}BASE_URL has the right host and port."
    )
