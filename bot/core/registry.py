"""The command registry: each command defined once (name, arguments, help, permission, handler).

Help text and the platforms' command menus are generated from it, so no command list is written twice.
Arguments are whitespace-separated tokens mapped in order onto the fields of a pydantic model (or parsed by
the command's own `parse`), then validated; anything wrong becomes a `UsageError` naming the command's usage.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.messages import Inbound, Outbound
from engine.access import Permission

if TYPE_CHECKING:
    from bot.core.messages import Replier

_NUMBER = re.compile(r"^[+-]?\$?\d{1,3}(,\d{3})+(\.\d+)?%?$|^[+-]?\$?\d+(\.\d+)?%?$")
MENU_DESCRIPTION_MAX = 256  # Telegram's BotCommand description limit


class UsageError(Exception):
    """The command's arguments are wrong; the message says how to write it."""


class NoArgs(BaseModel):
    """A command without arguments."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class CommandCall:
    """One run of a command: who, where, the validated arguments, and how to answer."""

    inbound: Inbound
    user_id: int
    args: Any
    replier: Replier
    permission: Permission
    # True/False when the access chain deleted (or failed to delete) the message because it carried secrets.
    deleted: bool | None = None


Handler = Callable[[CommandCall], Awaitable[Outbound | list[Outbound] | None]]
Parser = Callable[[list[str]], dict[str, Any]]


@dataclass(frozen=True)
class Command:
    """A slash command."""

    name: str
    summary: str
    handler: Handler
    args: type[BaseModel] = NoArgs
    usage: str = ""  # argument synopsis, e.g. "<symbol> [15m|1h|4h|1d]"
    example: str = ""
    permission: Permission = Permission.ANYONE
    private_only: bool = False
    parse: Parser | None = None
    aliases: tuple[str, ...] = ()
    in_menu: bool = True
    group_admin: bool = False  # in a group, only the chat's admins may run it (it acts for the whole group)

    @property
    def synopsis(self) -> str:
        """ "/name usage" as shown in help and usage messages."""
        return f"/{self.name} {self.usage}".rstrip()


def number_token(token: str) -> str:
    """'60,000' → '60000', '$1.5' → '1.5', '2%' → '2'; other tokens unchanged."""
    if _NUMBER.match(token):
        return token.replace(",", "").replace("$", "").rstrip("%")
    return token


def positional(tokens: list[str], model: type[BaseModel]) -> dict[str, Any]:
    """Map tokens in order onto the model's fields; too many tokens is an error."""
    names = list(model.model_fields)
    if len(tokens) > len(names):
        extra = " ".join(tokens[len(names) :])
        raise UsageError(f"unexpected extra argument(s): {extra}")
    return {name: number_token(tok) for name, tok in zip(names, tokens, strict=False)}


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


@dataclass
class CommandRegistry:
    """All commands of the bot, by name and alias."""

    _commands: dict[str, Command] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)

    def add(self, command: Command) -> Command:
        """Register a command (names and aliases must be unique, lowercase, ≤ 32 characters)."""
        for name in (command.name, *command.aliases):
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise ValueError(f"invalid command name {name!r}")
            if name in self._names:
                raise ValueError(f"command {name!r} registered twice")
        if not 1 <= len(command.summary) <= MENU_DESCRIPTION_MAX:
            raise ValueError(f"summary of /{command.name} must be 1-{MENU_DESCRIPTION_MAX} characters")
        self._commands[command.name] = command
        for name in (command.name, *command.aliases):
            self._names[name] = command.name
        return command

    def get(self, name: str) -> Command | None:
        """The command called `name` (or aliased so)."""
        key = self._names.get(name.lower())
        return self._commands[key] if key else None

    def __iter__(self) -> Iterable[Command]:
        return iter(self._commands.values())

    def parse_args(self, command: Command, text: str) -> Any:
        """Validated arguments of `command` from its argument text; UsageError explains what is wrong."""
        tokens = text.split()
        try:
            raw = command.parse(tokens) if command.parse else positional(tokens, command.args)
            return command.args.model_validate(raw)
        except UsageError as exc:
            raise UsageError(self.usage(command, str(exc))) from None
        except ValidationError as exc:
            raise UsageError(self.usage(command, _validation_text(exc))) from None

    @staticmethod
    def usage(command: Command, problem: str | None = None) -> str:
        """The usage message of a command, with what was wrong first."""
        lines = [f"{problem[0].upper()}{problem[1:]}." if problem else ""]
        lines.append(f"Usage: `{command.synopsis}`")
        if command.example:
            lines.append(f"Example: `{command.example}`")
        return "\n".join(line for line in lines if line)

    def visible(self, permission: Permission) -> list[Command]:
        """Commands a user with `permission` may run, in registration order."""
        return [c for c in self._commands.values() if c.permission <= permission]

    def help_text(self, permission: Permission) -> str:
        """Markdown help listing the commands this user may run."""
        lines = ["**Commands**"]
        for c in self.visible(permission):
            suffix = " (private chat)" if c.private_only else ""
            lines.append(f"`{c.synopsis}` — {c.summary}{suffix}")
        lines.append("")
        lines.append("Anything else you write goes to the analyst.")
        return "\n".join(lines)

    def menu(self, permission: Permission = Permission.TRADER) -> list[tuple[str, str]]:
        """(name, description) pairs for the platform's command menu."""
        return [(c.name, c.summary) for c in self.visible(permission) if c.in_menu]
