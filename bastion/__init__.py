"""Bastion: chat-first crypto trading assistant (composition root)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bastion")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
