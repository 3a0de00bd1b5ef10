"""`bastion engine proposals | approve | reject`: the monitor's proposals seen and answered from the terminal.

A proposal for a user no chat can reach (no running channel for their platform, or a console user) would
otherwise wait unseen until it expires. Here its owner sees it and answers it through the same approvals service
as a button press: owner-bound, single use, expiry respected, executed once by the executor with its guards.
"""

from __future__ import annotations

from typing import Any

import typer

from bastion.app import Services
from bastion.cli.common import console, fail, run_with_services
from bastion.cli.keys_cmd import USER_OPTION, _user_ref
from bastion.cli.output import JSON_OPTION, Column, print_json, print_table

TOKEN_ARGUMENT = typer.Argument(..., help="Token (or its first characters, at least 6).")
TOKEN_SHOWN = 12  # characters of the token printed; enough to name it, a prefix is accepted back


def register(group: typer.Typer) -> None:
    """Add `proposals`, `approve` and `reject` to the `engine` group."""

    @group.command("proposals")
    def proposals(
        user: str | None = typer.Option(None, "--user", "-u", help="Only this user's proposals (platform:id)."),
        show_all: bool = typer.Option(False, "--all", help="Also the decided and expired ones of the last 50."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """The monitor's proposals waiting for their owner (approve or reject them here)."""
        rows = run_with_services(lambda services: _list(services, user, show_all))
        if as_json:
            print_json(console, rows)
            return
        if not rows:
            console.print("No proposals waiting." if not show_all else "No proposals.")
            return
        columns = [
            *(Column(h, numeric=False) for h in ("token", "user", "status", "proposal")),
            Column("expires (UTC)", numeric=False, optional=True),
        ]
        cells = [[r["token"][:TOKEN_SHOWN], r["user"], r["status"], r["summary"], r["expires_at"][:16]] for r in rows]
        print_table(console, columns, cells)
        if any(r["status"] == "pending" for r in rows):
            # `--` first: a token may begin with "-", which would otherwise read as an option.
            console.print("Answer with `bastion engine approve|reject --user … -- TOKEN`.")

    @group.command("approve")
    def approve(token: str = TOKEN_ARGUMENT, user: str = USER_OPTION) -> None:
        """Approve a proposal of yours: it is executed once, through the guards."""
        console.print(run_with_services(lambda services: _decide(services, token, user, True)), highlight=False)

    @group.command("reject")
    def reject(token: str = TOKEN_ARGUMENT, user: str = USER_OPTION) -> None:
        """Reject a proposal of yours: nothing is placed."""
        console.print(run_with_services(lambda services: _decide(services, token, user, False)), highlight=False)


async def _list(services: Services, user: str | None, show_all: bool) -> list[dict[str, Any]]:
    from sqlalchemy import select
    from sqlmodel import col

    from engine.execution.proposals import is_monitor_proposal
    from storage.models import Approval, ApprovalStatus
    from storage.repositories import users as users_repo
    from storage.types import utcnow

    async with services.sessions() as session:
        query = select(Approval).order_by(col(Approval.created_at).desc()).limit(50)
        if user is not None:
            owner = await users_repo.find_user(session, *_user_ref(user))
            query = query.where(col(Approval.owner_user_id) == owner.id)
        if not show_all:
            query = query.where(
                col(Approval.status) == ApprovalStatus.PENDING.value, col(Approval.expires_at) > utcnow()
            )
        rows = [a for a in await session.scalars(query) if is_monitor_proposal(a)]
        refs = await users_repo.user_refs(session, (a.owner_user_id for a in rows))
    now = utcnow()
    out = []
    for a in rows:
        status = a.status
        if status == ApprovalStatus.PENDING.value and a.expires_at <= now:
            status = "expired"  # the sweep has not run yet; it is no longer answerable
        out.append(
            {
                "token": a.token,
                "user": refs.get(a.owner_user_id, f"user #{a.owner_user_id}"),
                "status": status,
                "summary": a.summary,
                "created_at": a.created_at.isoformat(),
                "expires_at": a.expires_at.isoformat(),
                "result": a.result,
            }
        )
    return out


async def _decide(services: Services, token: str, user: str, approve: bool) -> str:
    from sqlalchemy import select
    from sqlmodel import col

    from agents.state import TurnContext
    from agents.wiring import open_chat
    from bot.core.approvals import ApprovalsService
    from engine.execution.proposals import is_monitor_proposal
    from storage.models import Approval
    from storage.repositories import users as users_repo

    platform, uid = _user_ref(user)
    if len(token) < 6:
        raise fail("give at least the first 6 characters of the token (see `bastion engine proposals`)", 2)
    async with services.sessions() as session:
        owner = await users_repo.find_user(session, platform, uid)
        matches = list(await session.scalars(select(Approval).where(col(Approval.token).startswith(token))))
    if not matches:
        raise fail(f"no proposal with token {token!r}")
    if len(matches) > 1:
        raise fail(f"{len(matches)} proposals start with {token!r}; give more characters")
    row = matches[0]
    if not is_monitor_proposal(row):
        raise fail("that approval belongs to a chat conversation; answer it with its buttons there")
    assert owner.id is not None
    # The same service a button press goes through, with the real chat beside it (a monitor proposal never
    # resumes a conversation, but the service is built whole rather than around a stand-in).
    async with open_chat(services) as chat:
        service = ApprovalsService(services.sessions, chat, services.executor, services.open_account)
        refusal = service.refusal(row, owner.id)
        if refusal is not None:
            raise fail(refusal)
        async with service.lock(row.token):
            ctx = TurnContext(user_id=owner.id, platform=platform, may_trade=True)
            outcome = await service.decide(ctx, row, approve)
    return f"{row.summary}\n{outcome}"
