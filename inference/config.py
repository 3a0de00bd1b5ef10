"""What inference needs of the configuration (`EndpointSettings`), per-task model parameters, its retry settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from pydantic import SecretStr

from storage.retry import RetryPolicy

Task = Literal["analyst", "risk"]
TASKS: tuple[Task, ...] = get_args(Task)
ENV_PREFIX = "BASTION_MODEL__"


class EndpointSettings(Protocol):
    """The model endpoint's settings as inference reads them; `bastion.settings.ModelSettings` is one.

    A Protocol, so inference (below bastion in DESIGN §1's import order) never imports the application's settings.
    """

    @property
    def base_url(self) -> str | None:
        """e.g. http://gpu-host:8000/v1; None = the offline model."""
        ...

    @property
    def api_key(self) -> SecretStr:
        """Bearer token of the endpoint (may be empty)."""
        ...

    @property
    def analyst_model(self) -> str:
        """Served model name for analyst chat."""
        ...

    @property
    def risk_model(self) -> str:
        """Served model name for risk decisions."""
        ...

    @property
    def analyst_temperature(self) -> float:
        """Analyst chat temperature."""
        ...

    @property
    def risk_temperature(self) -> float:
        """Risk decision temperature."""
        ...

    @property
    def max_tokens(self) -> int:
        """Maximum tokens per answer."""
        ...

    @property
    def timeout_s(self) -> float:
        """Request timeout in seconds."""
        ...


@dataclass(frozen=True, slots=True)
class TaskConfig:
    """Served model name and sampling limits of one task."""

    model: str
    temperature: float
    max_tokens: int
    timeout_s: float
    model_setting: str  # the environment variable that names this model, for error messages


def task_configs(settings: EndpointSettings) -> dict[Task, TaskConfig]:
    """The analyst and risk task parameters of `settings`."""
    return {
        "analyst": TaskConfig(
            model=settings.analyst_model,
            temperature=settings.analyst_temperature,
            max_tokens=settings.max_tokens,
            timeout_s=settings.timeout_s,
            model_setting=f"{ENV_PREFIX}ANALYST_MODEL",
        ),
        "risk": TaskConfig(
            model=settings.risk_model,
            temperature=settings.risk_temperature,
            max_tokens=settings.max_tokens,
            timeout_s=settings.timeout_s,
            model_setting=f"{ENV_PREFIX}RISK_MODEL",
        ),
    }


# The model endpoint: three tries, half a second doubling to 4 s, up to 20% longer at random so many monitors
# do not retry in lockstep.
MODEL_RETRY = RetryPolicy(jitter=0.2)
