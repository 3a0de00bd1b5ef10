"""The Discord app command tree, generated from the shared command registry (never a second list of commands).

Each registry command becomes a slash command with the registry's name and summary. Its options come from the
command's argument model: one typed option per field (numbers as numbers, a `Literal` as choices, so timeframes
are picked from a list, and `symbol` with autocomplete). Commands whose grammar is richer than their fields (the
entry grammar of /long and /short) get their symbol plus one `details` text option described by the usage line.
An invocation is written back as the command text the registry parses (`/close SOL 50 long`), so the arguments
are validated, refused and explained exactly as on Telegram, through the same access chain.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Optional

import discord
from discord import app_commands
from pydantic.fields import FieldInfo

from bot.core.registry import Command, CommandRegistry

SYMBOL = "symbol"
DETAILS = "details"
DESCRIPTION_MAX = 100  # Discord's limit for command and option descriptions
CHOICES_MAX = 25
SCALARS = (str, float, int)
Run = Callable[[discord.Interaction[Any], Command, str], Awaitable[None]]


@dataclass(frozen=True)
class Option:
    """One slash option of a command and how it is written back into the command's text."""

    name: str
    annotation: Any  # what discord.py turns into the option type (str, float, int, Literal[...] for choices)
    required: bool
    description: str
    default_text: str | None = None  # written when a later option is given and this one is not


def _clip(text: str) -> str:
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def _inner(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            annotation, optional = args[0], True
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]  # validators stay with the registry's model
    return annotation, optional


def _scalar(annotation: Any) -> bool:
    inner, _ = _inner(annotation)
    if typing.get_origin(inner) is Literal:
        values = typing.get_args(inner)
        return all(isinstance(v, str) for v in values) and len(values) <= CHOICES_MAX
    return inner in SCALARS


def token(value: Any) -> str:
    """A value as the token the registry reads back exactly (floats without a trailing .0, never rounded)."""
    if isinstance(value, float):
        return repr(value).removesuffix(".0")
    return str(value)


def _describe(name: str, field: FieldInfo, inner: Any) -> str:
    if field.description:
        text = field.description
    elif name == SYMBOL:
        text = "Symbol, e.g. BTC, ETH or SOLUSDT"
    else:
        text = name.replace("_", " ").capitalize()
    default = field.get_default()
    if not field.is_required() and default is not None:
        text += f" (default {token(default)})"
    return _clip(text)


def options_of(command: Command) -> list[Option]:
    """The slash options of a registry command, in the order its arguments are written."""
    fields = command.args.model_fields
    # A custom parser with no fields reads the text itself (`/unsubscribe [scan | symbols]`): it gets `details`.
    if all(_scalar(f.annotation) for f in fields.values()) and (fields or command.parse is None):
        out = []
        for name, field in fields.items():
            inner, _ = _inner(field.annotation)
            default = field.get_default()
            out.append(
                Option(
                    name,
                    inner,
                    field.is_required(),
                    _describe(name, field, inner),
                    None if field.is_required() or default is None else token(default),
                )
            )
        return out
    # A richer grammar than its fields: the symbol (autocompleted) and the rest as the usage line says.
    out = []
    if SYMBOL in fields:
        out.append(Option(SYMBOL, str, True, _describe(SYMBOL, fields[SYMBOL], str)))
    # Required when the usage has a mandatory part beyond the symbol (`/long <symbol> <size|risk%> stop ...`).
    required = "<" in command.usage.replace("<symbol>", "")
    out.append(Option(DETAILS, str, required, _clip(f"The rest of: {command.synopsis}")))
    return out


def command_text(command: Command, options: Sequence[Option], given: dict[str, Any]) -> str:
    """The command as typed text from the options given (a gap before a given option gets that one's default)."""
    tokens: list[str] = []
    pending: list[str] = []
    for option in options:
        value = given.get(option.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if option.default_text is not None:
                pending.append(option.default_text)
            continue
        tokens.extend(pending)
        pending.clear()
        tokens.append(token(value).strip())
    return " ".join([f"/{command.name}", *tokens])


def _callback(command: Command, options: list[Option], run: Run) -> Callable[..., Awaitable[None]]:
    async def callback(interaction: discord.Interaction[Any], **given: Any) -> None:
        await run(interaction, command, command_text(command, options, given))

    params = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction)]
    # Discord lists required options first; the text keeps the registry's order whatever the option order.
    for option in sorted(options, key=lambda o: not o.required):
        annotation = option.annotation if option.required else Optional[option.annotation]  # noqa: UP045
        default = inspect.Parameter.empty if option.required else None
        params.append(
            inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
        )
    callback.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_description__ = {o.name: o.description for o in options}  # type: ignore[attr-defined]
    callback.__name__ = callback.__qualname__ = f"slash_{command.name}"
    return callback


def symbol_completer(symbols: Callable[[], Sequence[str]]) -> Callable[..., Awaitable[list[app_commands.Choice[str]]]]:
    """Autocomplete of a symbol option: the listed bases that start with (then contain) what was typed."""

    async def complete(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        typed = current.strip().upper().split("/")[0]
        bases = sorted({s.split("/")[0].upper() for s in symbols()})
        first = [b for b in bases if b.startswith(typed)]
        then = [b for b in bases if typed and typed in b and b not in first]
        return [app_commands.Choice(name=b, value=b) for b in (first + then)[:CHOICES_MAX]]

    return complete


def app_command(
    command: Command, run: Run, symbols: Callable[[], Sequence[str]]
) -> app_commands.Command[Any, ..., None]:
    """The slash command of one registry command."""
    options = options_of(command)
    slash: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=command.name,
        description=_clip(command.summary),
        callback=_callback(command, options, run),  # type: ignore[arg-type]  # its signature is built
        # Keys are typed only in a DM: the command is not even offered in a server.
        allowed_contexts=app_commands.AppCommandContext(guild=not command.private_only, dm_channel=True),
    )
    if any(o.name == SYMBOL for o in options):
        slash.autocomplete(SYMBOL)(symbol_completer(symbols))  # type: ignore[arg-type]
    return slash


def add_registry(
    tree: app_commands.CommandTree[Any], registry: CommandRegistry, run: Run, symbols: Callable[[], Sequence[str]]
) -> list[str]:
    """Add every menu command of the registry to the tree; returns their names."""
    names = []
    for command in registry:  # type: ignore[attr-defined]  # the registry iterates its commands
        if command.in_menu:
            tree.add_command(app_command(command, run, symbols))
            names.append(command.name)
    return names
