"""OpenAI-compatible model client (vLLM in production), prompts, output schemas and the endpoint check."""

from inference.client import ModelClient
from inference.completion import Completion, ToolCall, Usage
from inference.config import TASKS, Task, TaskConfig, task_configs
from inference.errors import InferenceError, InvalidModelOutput, ModelConfigError, ModelTimeout, ModelUnavailable
from inference.health import HealthReport, check_endpoint
from inference.prompts import Prompt, load_prompt
from inference.schemas import RISK_ACTIONS, RiskAction, RiskDecisionOut
from inference.structured import parse_model_output, response_format_for, strict_json_schema
from storage.retry import RetryPolicy

__all__ = [
    "RISK_ACTIONS",
    "TASKS",
    "Completion",
    "HealthReport",
    "InferenceError",
    "InvalidModelOutput",
    "ModelClient",
    "ModelConfigError",
    "ModelTimeout",
    "ModelUnavailable",
    "Prompt",
    "RetryPolicy",
    "RiskAction",
    "RiskDecisionOut",
    "Task",
    "TaskConfig",
    "ToolCall",
    "Usage",
    "check_endpoint",
    "load_prompt",
    "parse_model_output",
    "response_format_for",
    "strict_json_schema",
    "task_configs",
]
