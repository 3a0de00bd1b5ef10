"""`bastion keys ...`: a user's exchange accounts; credentials are prompted for and stored encrypted."""

from __future__ import annotations

import typer

from bastion.app import Services
from bastion.cli.common import console, fail, run_with_services, settings_or_exit
from bastion.cli.output import JSON_OPTION, Column, print_json, print_table
from bastion.settings import split_keys
from storage.exchange_ids import NEEDS_PASSWORD, PAPER, SUPPORTED_EXCHANGES
from storage.models import AccountMode
from storage.repositories import accounts as accounts_repo
from storage.repositories import audit
from storage.repositories import users as users_repo
from storage.repositories.users import find_user, get_or_create_user, parse_user_ref
from storage.secrets import SecretBox, SecretsError

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
        settings = settings_or_exit()
        if fields:
            try:  # before any prompt: typing a secret only to hear it cannot be stored wastes it
                SecretBox(split_keys(settings.secret_keys.get_secret_value()))
            except SecretsError as exc:
                raise fail(str(exc)) from None
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

        account_id = run_with_services(go, settings)
        console.print(f"added {exchange} account {label!r} (id {account_id}) for {user}; read-only until armed")

    @group.command("list")
    def list_(
        user: str | None = typer.Option(None, "--user", "-u", help="Only this user's accounts."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """List accounts (credentials are never shown)."""
        ref = _user_ref(user) if user else None

        async def go(services: Services) -> list[dict[str, object]]:
            async with services.sessions() as session:
                owner_id = (await find_user(session, *ref)).id if ref else None
                rows = await accounts_repo.list_accounts(session, owner_id)
                refs = await users_repo.user_refs(session, (a.user_id for a in rows))
                return [
                    {
                        "account": a.id,
                        "user": refs.get(a.user_id, f"user #{a.user_id}"),
                        "exchange": a.exchange_id,
                        "label": a.label,
                        "mode": a.mode,
                        "read_only": a.read_only,
                        "credentials": "stored" if a.credentials_encrypted else "none",
                    }
                    for a in rows
                ]

        rows = run_with_services(go)
        if as_json:
            print_json(console, rows)
            return
        columns = [Column("id"), *(Column(h, numeric=False) for h in ("user", "exchange", "label", "mode")),
                   Column("read-only", numeric=False), Column("credentials", numeric=False, optional=True)]  # fmt: skip
        cells = [[str(r["account"]), str(r["user"]), str(r["exchange"]), str(r["label"]), str(r["mode"]),
                  "yes" if r["read_only"] else "no", str(r["credentials"])] for r in rows]  # fmt: skip
        print_table(console, columns, cells)

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
