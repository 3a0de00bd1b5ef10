"""/connect: exchange keys from a private chat, stored encrypted; the message carrying them is already deleted.

The access chain (bot/core/middleware.py) deletes a key-bearing message before its arguments are parsed, so
nothing here may echo a value: a user who left the exchange name out typed their key in its place.
"""

from __future__ import annotations

from bot.core.commands.args import ConnectArgs, parse_connect
from bot.core.commands.deps import CommandDeps
from bot.core.messages import Outbound
from bot.core.registry import Command, CommandCall, CommandRegistry, Permission
from storage.errors import StorageError
from storage.exchange_ids import NEEDS_PASSWORD, PAPER, SUPPORTED_EXCHANGES
from storage.repositories import accounts as accounts_repo
from storage.repositories import audit
from storage.secrets import SecretsError


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add /connect (trader permission, private chats only)."""

    async def connect(call: CommandCall) -> Outbound:
        a: ConnectArgs = call.args
        # The access chain deleted a message that carried keys before the arguments were even parsed.
        warn = ""
        if call.deleted is False:
            warn = "\nI could not delete your message; delete it yourself and rotate those keys."
        if a.exchange not in SUPPORTED_EXCHANGES:
            # Never echo it: a user who left the exchange out typed their key here.
            return Outbound(f"Unknown exchange; supported: {', '.join(SUPPORTED_EXCHANGES)}. Nothing was stored.{warn}")
        given_keys = bool(a.api_key or a.secret or a.passphrase)
        creds = {"apiKey": a.api_key or "", "secret": a.secret or "", "password": a.passphrase or ""}
        if a.exchange == PAPER:
            creds = {}  # a paper account has no keys: whatever was typed is never stored
        elif a.exchange not in NEEDS_PASSWORD:
            creds.pop("password")
        try:
            box = deps.secret_box() if a.exchange != PAPER else None
            async with deps.sessions.begin() as session:
                row = await accounts_repo.add_account(
                    session, box, user_id=call.user_id, exchange_id=a.exchange, label=a.exchange, credentials=creds
                )
                await audit.record(
                    session, "account_added", user_id=call.user_id, account_id=row.id, data={"exchange": a.exchange}
                )
        except SecretsError:
            return Outbound(f"Keys cannot be stored: the operator has not configured encryption.{warn}")
        except StorageError as exc:
            return Outbound(f"Not connected: {exc.user_message}.{warn}")
        if a.exchange == PAPER:
            ignored = " It needs no keys: the ones you sent were not stored." if given_keys else ""
            return Outbound(
                f"Connected a paper account `{row.label}` (simulated money, advise mode).{ignored} "
                f"Use `/arm` to allow orders on it.{warn}"
            )
        return Outbound(
            f"Connected {a.exchange} as account `{row.label}` (read-only, advise mode). "
            f"Your keys are stored encrypted and will never be shown again. Use `/arm` to allow orders.{warn}"
        )

    reg.add(
        Command("connect", "Connect an exchange account (keys are stored encrypted)", connect, ConnectArgs,
                "<exchange> [api_key secret [passphrase]]", "/connect paper", permission=Permission.TRADER,
                private_only=True, parse=parse_connect)
    )
