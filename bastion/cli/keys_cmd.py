"""`bastion keys ...`: a user's exchange accounts; credentials are prompted for and stored encrypted."""

from __future__ import annotations

import typer
from rich.table import Table

from bastion.app import Services
from bastion.cli.common import console, fail, run_with_services
from storage.models import AccountMode
from storage.repositories import accounts as accounts_repo
from storage.repositories import audit
from storage.repositories.users import find_user, get_or_create_user, parse_user_ref
from storage.secrets import SecretBox
from tools.exchange.ids import NEEDS_PASSWORD, PAPER, SUPPORTED_EXCHANGES

USER_OPTION = typer.Option("console:local", "--user", "-u", help="Owner as platform:id, e.g. telegram:123456.")
PROMPTS = {"apiKey": "API key", "secret": "API secret", "password": "API passphrase"}


def _user_ref(ref: str) -> tuple[str, str]:
    try:
        return parse_user_ref(ref)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def register(app: typer.Typer) -> None:
    """Add the `keys` command group."""
    group = typer.Typer(help="Exchange accounts and their encrypted credentials.", no_args_is_help=True)

    @group.command("genkey")
    def genkey() -> None:
        """Print a new encryption key for BASTION_SECRET_KEYS (put the new key first to rotate)."""
        console.print(SecretBox.generate_key(), highlight=False)

    @group.command("add")
    def add(
        exchange: str = typer.Option(..., "--exchange", "-e", help=f"One of: {', '.join(SUPPORTED_EXCHANGES)}."),
        label: str = typer.Option("main", "--label", "-l", help="Name of this account for the user."),
        user: str = USER_OPTION,
        mode: AccountMode = typer.Option(AccountMode.ADVISE, "--mode", help="off | advise | auto."),
        sandbox: bool = typer.Option(False, "--sandbox", help="Use the exchange's testnet."),
    ) -> None:
        """Connect an exchange account; key, secret (and passphrase) are prompted for, never echoed."""
        platform, uid = _user_ref(user)
        if exchange not in SUPPORTED_EXCHANGES:
            raise fail(f"unknown exchange {exchange!r}; supported: {', '.join(SUPPORTED_EXCHANGES)}", 2)
        fields = (
            [] if exchange == PAPER else ["apiKey", "secret"] + (["password"] if exchange in NEEDS_PASSWORD else [])
        )
        # Prompted, not passed as options, so credentials never land in shell history or `ps`.
        credentials = {f: typer.prompt(PROMPTS[f], hide_input=True) for f in fields}

        async def go(services: Services) -> int:
            box = services.secret_box() if credentials else None
            async with services.sessions.begin() as session:
                owner = await get_or_create_user(session, platform, uid)
                assert owner.id is not None
                account = await accounts_repo.add_account(
                    session,
                    box,
                    user_id=owner.id,
                    exchange_id=exchange,
                    label=label,
                    credentials=credentials,
                    mode=mode,
                    sandbox=sandbox,
                )
                await audit.record(
                    session,
                    "account_added",
                    user_id=owner.id,
                    account_id=account.id,
                    data={"exchange": exchange, "label": label, "mode": mode.value},
                )
                assert account.id is not None
                return account.id

        account_id = run_with_services(go)
        console.print(f"added {exchange} account {label!r} (id {account_id}) for {user}; read-only until armed")

    @group.command("list")
    def list_(user: str | None = typer.Option(None, "--user", "-u", help="Only this user's accounts.")) -> None:
        """List accounts (credentials are never shown)."""
        ref = _user_ref(user) if user else None

        async def go(services: Services) -> list[tuple[str, ...]]:
            async with services.sessions() as session:
                owner_id = (await find_user(session, *ref)).id if ref else None
                rows = await accounts_repo.list_accounts(session, owner_id)
                return [
                    (
                        str(a.id),
                        str(a.user_id),
                        a.exchange_id,
                        a.label,
                        a.mode,
                        "yes" if a.read_only else "no",
                        "stored" if a.credentials_encrypted else "none",
                    )
                    for a in rows
                ]

        table = Table("id", "user", "exchange", "label", "mode", "read-only", "credentials")
        for row in run_with_services(go):
            table.add_row(*row)
        console.print(table)

    @group.command("remove")
    def remove(
        label: str = typer.Option(..., "--label", "-l", help="Label of the account to delete."),
        user: str = USER_OPTION,
    ) -> None:
        """Delete an account and its stored credentials."""
        platform, uid = _user_ref(user)

        async def go(services: Services) -> None:
            async with services.sessions.begin() as session:
                owner = await find_user(session, platform, uid)
                assert owner.id is not None
                await accounts_repo.remove_account(session, owner.id, label)
                await audit.record(session, "account_removed", user_id=owner.id, data={"label": label})

        run_with_services(go)
        console.print(f"removed account {label!r} of {user}")

    @group.command("rotate")
    def rotate() -> None:
        """Re-encrypt all credentials with the first key of BASTION_SECRET_KEYS (then retire old keys)."""

        async def go(services: Services) -> int:
            box = services.secret_box()
            async with services.sessions.begin() as session:
                count = await accounts_repo.rotate_credentials(session, box)
                await audit.record(session, "keys_rotated", data={"accounts": count})
                return count

        console.print(f"re-encrypted credentials of {run_with_services(go)} account(s) with the newest key")

    app.add_typer(group, name="keys")
