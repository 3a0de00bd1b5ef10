"""Typed storage errors whose message is safe to show a user."""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation was refused; `user_message` explains it without internals."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class NotFoundError(StorageError):
    """The requested row does not exist (or belongs to someone else)."""


class ConflictError(StorageError):
    """The row already exists or was changed concurrently."""
