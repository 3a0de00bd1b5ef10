"""Who may do what: the permission levels, the operator's allow-list and admins, and roles stored on the user row.

This is the one place that decides whether a user may trade. The bots' access chain asks it when a message or
a press arrives; the agent's order tools and the executor ask it again, fresh from the database, at the moment
an order would be proposed or placed (a role revoked between proposal and press refuses the press).

Trading is closed by default: with an empty allow-list nobody may trade until an admin grants the role or the
operator opens trading to everyone explicitly. Local platforms (the console, run by the operator on their own
machine) always may.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import User

ROLE_TRADER = "trader"
ROLE_ADMIN = "admin"
ROLES = (ROLE_TRADER, ROLE_ADMIN)
LOCAL_PLATFORMS = frozenset({"console"})


class Permission(IntEnum):
    """Who may run a command; each level includes the ones below it."""

    ANYONE = 0
    TRADER = 1
    ADMIN = 2


@dataclass(frozen=True)
class AccessPolicy:
    """The settings part of the permissions (allow-list, admins, open trading) applied to users and roles."""

    allowed: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    open_to_everyone: bool = False
    local_platforms: frozenset[str] = LOCAL_PLATFORMS

    @classmethod
    def from_settings(
        cls, allowed_users: Iterable[str], admin_users: Iterable[str], open_to_everyone: bool = False
    ) -> AccessPolicy:
        """From BASTION_ALLOWED_USERS / BASTION_ADMIN_USERS ("platform:id" strings) and the open-trading switch."""
        return cls(frozenset(allowed_users), frozenset(admin_users), open_to_everyone)

    @property
    def trading_closed(self) -> bool:
        """True when only admins and users granted the trader role may trade (nobody is allowed by settings)."""
        return not self.allowed and not self.open_to_everyone

    def permission(self, platform: str, user_ref: str, db_roles: Iterable[str] = ()) -> Permission:
        """The highest permission of a user (settings first, then roles granted in the database)."""
        ref = f"{platform}:{user_ref}"
        roles = set(db_roles)
        if ref in self.admins or ROLE_ADMIN in roles:
            return Permission.ADMIN
        if platform in self.local_platforms or self.open_to_everyone or ref in self.allowed or ROLE_TRADER in roles:
            return Permission.TRADER
        return Permission.ANYONE

    def permission_of(self, user: User) -> Permission:
        """The permission of a stored user (an inactive row keeps its roles)."""
        return self.permission(user.platform, user.platform_user_id, user.roles or [])

    async def current(self, session: AsyncSession, user_id: int) -> Permission:
        """The user's permission read fresh from the database now (ANYONE for an unknown user id)."""
        user = await session.get(User, user_id, populate_existing=True)
        return self.permission_of(user) if user is not None else Permission.ANYONE

    async def may_trade(self, session: AsyncSession, user_id: int) -> bool:
        """Whether the user may propose or place orders right now (checked fresh, never cached)."""
        return await self.current(session, user_id) >= Permission.TRADER


def refusal(required: Permission) -> str:
    """What a user without the permission is told."""
    if required is Permission.ADMIN:
        return "Only an admin of this bot can do that."
    return "Trading is limited to allowed users; ask an admin of this bot for access (/grant <your id> trader)."
