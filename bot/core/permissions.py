"""Who may do what: an allow-list and admins from the settings, plus roles stored on the user row."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.commands import Permission

ROLE_TRADER = "trader"
ROLE_ADMIN = "admin"
ROLES = (ROLE_TRADER, ROLE_ADMIN)


@dataclass(frozen=True)
class AccessPolicy:
    """Settings part of the permissions; an empty allow-list lets everyone trade."""

    allowed: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, allowed_users: Iterable[str], admin_users: Iterable[str]) -> AccessPolicy:
        """From BASTION_ALLOWED_USERS / BASTION_ADMIN_USERS ("platform:id" strings)."""
        return cls(frozenset(allowed_users), frozenset(admin_users))

    def permission(self, platform: str, user_ref: str, db_roles: Iterable[str] = ()) -> Permission:
        """The highest permission of a user (settings first, then roles granted in the database)."""
        ref = f"{platform}:{user_ref}"
        roles = set(db_roles)
        if ref in self.admins or ROLE_ADMIN in roles:
            return Permission.ADMIN
        if not self.allowed or ref in self.allowed or ROLE_TRADER in roles:
            return Permission.TRADER
        return Permission.ANYONE


def refusal(required: Permission) -> str:
    """What a user without the permission is told."""
    if required is Permission.ADMIN:
        return "Only an admin of this bot can do that."
    return "Trading commands are limited to allowed users; ask an admin of this bot for access."
