"""The offline model: deterministic answers from tool data when no language model is configured."""

from agents.offline.model import OfflineChatModel

__all__ = ["OfflineChatModel"]
