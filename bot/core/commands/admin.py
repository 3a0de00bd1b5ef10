"""Admin commands: roles of users on this platform."""

from __future__ import annotations

from bot.core.commands.args import GrantArgs
from bot.core.commands.deps import CommandDeps
from bot.core.messages import Outbound
from bot.core.permissions import ROLES
from bot.core.registry import Command, CommandCall, CommandRegistry, Permission
from storage.models import User
from storage.repositories import audit
from storage.repositories import users as users_repo


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add /grant and /revoke (admin permission)."""

    async def grant(call: CommandCall, add: bool) -> Outbound:
        a: GrantArgs = call.args
        platform = call.inbound.platform
        uid = a.user.split(":", 1)[1] if a.user.startswith(f"{platform}:") else a.user
        async with deps.sessions.begin() as session:
            user = await users_repo.get_or_create_user(session, platform, uid)
            roles = [r for r in (user.roles or []) if r in ROLES and r != a.role] + ([a.role] if add else [])
            row = await session.get(User, user.id)
            assert row is not None
            row.roles = roles
            await audit.record(session, "role_change", user_id=call.user_id, data={"user": uid, "roles": roles})
        if deps.forget_user is not None:
            deps.forget_user(platform, uid)
        return Outbound(f"{platform}:{uid} roles: {', '.join(roles) or 'none'}.")

    async def grant_role(call: CommandCall) -> Outbound:
        return await grant(call, True)

    async def revoke_role(call: CommandCall) -> Outbound:
        return await grant(call, False)

    for c in (
        Command("grant", "Admin: give a user a role", grant_role, GrantArgs, "<user id> <trader|admin>",
                "/grant 123456 trader", permission=Permission.ADMIN),
        Command("revoke", "Admin: take a role away", revoke_role, GrantArgs, "<user id> <trader|admin>",
                permission=Permission.ADMIN),
    ):
        reg.add(c)
