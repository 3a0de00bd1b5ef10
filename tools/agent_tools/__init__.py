"""LangChain tools over the services, for the analyst agent: typed arguments, compact JSON results."""

from tools.agent_tools.base import PositionEvaluator, ToolContext, ToolDeps, ToolError
from tools.agent_tools.registry import (
    CONTEXT_KEY,
    PROPOSE_ORDER,
    READ_ONLY_TOOLS,
    SPECS,
    Toolkit,
    ToolResult,
    ToolSpec,
)

__all__ = [
    "CONTEXT_KEY",
    "PROPOSE_ORDER",
    "READ_ONLY_TOOLS",
    "SPECS",
    "PositionEvaluator",
    "ToolContext",
    "ToolDeps",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "Toolkit",
]
