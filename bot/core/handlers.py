"""The bot's slash commands, defined once: arguments, help, permission and handler of each.

A command calls its tool with its validated arguments and renders the result (the offline model's renderers, so
answers read the same as in free text). Read-only commands never touch LangGraph or the checkpointer, and are not
written into the conversation history. Orders (entries, closes, stops, targets, breakeven) enter the analyst graph
at the risk check, then the approval interrupt: the same guards, the same buttons, the same execution as free text.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents.approval import propose_directly
from agents.offline.intents import ENTRY_USAGE, Request, parse_entry
from agents.offline.model import answer_directly
from agents.runner import AnalystChat
from bot.core.commands import (
    Command,
    CommandCall,
    CommandRegistry,
    Permission,
    UsageError,
    number_token,
)
from bot.core.dispatcher import reply_outbound, turn_context
from bot.core.messages import Outbound
from bot.core.permissions import ROLES
from storage.errors import StorageError
from storage.models import AccountMode, User
from storage.repositories import accounts as accounts_repo
from storage.repositories import audit
from storage.repositories import engine as engine_repo
from storage.repositories import users as users_repo
from storage.secrets import SecretBox, SecretsError
from tools.agent_tools.base import PREFS_KEY, PreferenceStore, ToolContext, ToolError, prefs_namespace, user_account
from tools.agent_tools.batch import order_line
from tools.exchange.errors import AccountError
from tools.exchange.ids import NEEDS_PASSWORD, PAPER, SUPPORTED_EXCHANGES
from tools.market.base import UnknownSymbolError
from tools.market.symbols import normalise_symbol

FRACTIONS = {"all": 100.0, "full": 100.0, "half": 50.0, "third": 33.33, "quarter": 25.0}
SIDES = ("long", "short")
# What a typed number may look like: 60000, 0.00001234, 1e6, 1.5e-8 (and inf / nan, so they are refused by
# name instead of being mistaken for a symbol).
_NUMBER_TOKEN = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
# Plausible magnitudes: a price or an amount outside these is a typo (or an attack), never a real order.
MIN_PRICE, MAX_PRICE = 1e-12, 1e12
MAX_CAPITAL = 1e12


def _symbol(value: str) -> str:
    try:
        return normalise_symbol(value)
    except (ValueError, UnknownSymbolError):
        raise ValueError(f"{value!r} is not a symbol (try BTC, ETH or SOLUSDT)") from None


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _plausible_price(value: float) -> float:
    if not MIN_PRICE <= value <= MAX_PRICE:
        raise ValueError(f"{value:g} is not a plausible price (between {MIN_PRICE:g} and {MAX_PRICE:g})")
    return value


def _plausible_capital(value: float) -> float:
    if value > MAX_CAPITAL:
        raise ValueError(f"{value:g} is not a plausible amount (at most {MAX_CAPITAL:g})")
    return value


def exact(value: float) -> str:
    """The shortest text that reads back as exactly `value` (1000000, 1.234e-05), never `:g`'s six digits."""
    text = repr(float(value))
    return text.removesuffix(".0")


def is_number(token: str) -> bool:
    """Whether a token is a number as typed (plain, scientific, inf or nan; commas and $ already removed)."""
    return _NUMBER_TOKEN.fullmatch(token) is not None


Symbol = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_symbol)]
# Finite (inf and nan are refused by pydantic with "Input should be a finite number") and plausible.
Price = Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_plausible_price)]
Percent = Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]
Timeframe = Annotated[Literal["15m", "1h", "4h", "1d"], BeforeValidator(_lower)]
Side = Annotated[Literal["long", "short"] | None, BeforeValidator(_lower)]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SymbolArgs(_Args):
    """One symbol."""

    symbol: Symbol


class SymbolTfArgs(SymbolArgs):
    """A symbol and a timeframe."""

    timeframe: Timeframe = "1h"


class SizeArgs(_Args):
    """Pre-trade calculator."""

    symbol: Symbol
    entry: Price
    stop: Price
    risk: float | None = Field(default=None, gt=0, le=10, allow_inf_nan=False, description="risk % per trade")


class CloseArgs(_Args):
    """What to close."""

    symbol: Symbol
    pct: Percent = 100.0
    side: Side = None


class PriceArgs(_Args):
    """A trigger price on a position."""

    symbol: Symbol
    price: Price
    side: Side = None


class SideArgs(_Args):
    """A position."""

    symbol: Symbol
    side: Side = None


class ConnectArgs(_Args):
    """Exchange credentials."""

    exchange: Annotated[str, BeforeValidator(_lower)]
    api_key: str | None = Field(default=None, min_length=4, max_length=256)
    secret: str | None = Field(default=None, min_length=4, max_length=512)
    passphrase: str | None = Field(default=None, max_length=256)


class LabelArgs(_Args):
    """An account label (the first account when omitted)."""

    label: str | None = Field(default=None, max_length=64)


class ArmArgs(_Args):
    """Arm an account in a mode."""

    mode: Annotated[Literal["advise", "auto"], BeforeValidator(_lower)] = "advise"
    label: str | None = Field(default=None, max_length=64)


class KillArgs(_Args):
    """Engage or release a kill switch."""

    action: Annotated[Literal["on", "release"], BeforeValidator(_lower)] = "on"


class SettingsArgs(_Args):
    """Show or change a preference."""

    key: Annotated[Literal["risk", "capital"] | None, BeforeValidator(_lower)] = None
    value: Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_plausible_capital)] | None = None


class GrantArgs(_Args):
    """A role for a user of this platform."""

    user: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:.-]+$")
    role: Annotated[Literal["trader", "admin"], BeforeValidator(_lower)]


def parse_close(tokens: list[str]) -> dict[str, Any]:
    """`/close sol half long`, `/close 25% btc`: a symbol, an optional amount and an optional side, any order."""
    out: dict[str, Any] = {}
    for tok in tokens:
        low = tok.lower()
        if low in SIDES:
            out["side"] = low
        elif low in FRACTIONS:
            out["pct"] = FRACTIONS[low]
        elif is_number(number_token(low)):
            out["pct"] = number_token(low)
        elif "symbol" not in out:
            out["symbol"] = tok
        else:
            raise UsageError(f"I do not understand {tok!r}")
    return out


def parse_trigger(tokens: list[str]) -> dict[str, Any]:
    """`/stop sol 140 long` or `/stop 140 sol`: a symbol, a price and an optional side."""
    out: dict[str, Any] = {}
    for tok in tokens:
        low, num = tok.lower(), number_token(tok)
        if low in SIDES:
            out["side"] = low
        elif is_number(num) and "price" not in out:
            out["price"] = num
        elif "symbol" not in out:
            out["symbol"] = tok
        else:
            raise UsageError(f"I do not understand {tok!r}")
    return out


CONNECT_FIELDS = ("exchange", "api_key", "secret", "passphrase")


def parse_connect(tokens: list[str]) -> dict[str, Any]:
    """`/connect <exchange> [key secret [passphrase]]`; a mistake is explained without repeating any value."""
    if len(tokens) > len(CONNECT_FIELDS):
        raise UsageError(
            f"too many arguments ({len(tokens)}; at most exchange, key, secret and passphrase); nothing was stored"
        )
    return dict(zip(CONNECT_FIELDS, tokens, strict=False))


class CancelArgs(_Args):
    """One open order by its id, or all of them."""

    order_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:.-]+$")


class EntryArgs(_Args):
    """A new position, in the shared entry grammar (`agents.offline.intents.ENTRY_USAGE`)."""

    symbol: Symbol
    side: Annotated[Literal["long", "short"], BeforeValidator(_lower)]
    amount: Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_plausible_capital)] | None = None
    risk_pct: float | None = Field(default=None, gt=0, le=10, allow_inf_nan=False)
    stop_price: Price | None = None
    auto_stop: bool = False
    targets: list[Price] | None = Field(default=None, max_length=3)
    leverage: int | None = Field(default=None, ge=1, le=125)
    limit_price: Price | None = None
    timeframe: Timeframe | None = None

    @model_validator(mode="after")
    def _complete(self) -> EntryArgs:
        if self.stop_price is None and not self.auto_stop:
            raise ValueError("an entry always has a stop: add `stop <price>` or `stop auto` (the structural stop)")
        if self.amount is None and self.risk_pct is None:
            raise ValueError("give a size (0.1) or a risk in % of your capital (1%)")
        return self


def entry_parser(side: str) -> Callable[[list[str]], dict[str, Any]]:
    """`/long sol 0.1 stop auto tp 160,170 lev 3`: the free-text entry grammar, with the side fixed."""

    def parse(tokens: list[str]) -> dict[str, Any]:
        return parse_entry(" ".join(tokens), side)

    return parse


@dataclass
class CommandDeps:
    """What the command handlers use."""

    chat: AnalystChat
    sessions: async_sessionmaker[AsyncSession]
    secret_box: Callable[[], SecretBox]
    store: PreferenceStore | None = None
    forget_user: Callable[[str, str], None] | None = None


async def answer(deps: CommandDeps, call: CommandCall, req: Request, private: bool = False) -> Outbound:
    """A read-only command: its tools called directly with the validated arguments, the answer rendered; no graph."""
    toolkit = deps.chat.toolkit
    text, data = await answer_directly(toolkit, ToolContext(user_id=call.user_id, store=deps.store), req)
    chart = data.get("get_chart") or {}
    photo = toolkit.deps.charts.take(chart["chart"]) if isinstance(chart.get("chart"), str) else None
    return Outbound(text, photo=photo, private=private)


async def propose(deps: CommandDeps, call: CommandCall, args: dict[str, Any]) -> Outbound:
    """An order command: its arguments enter the analyst graph at the risk check, then the approval interrupt."""
    ctx = turn_context(call.inbound, call.user_id, may_trade=call.permission >= Permission.TRADER)
    return reply_outbound(await propose_directly(deps.chat, ctx, call.inbound.text, args))


def build_registry(deps: CommandDeps) -> CommandRegistry:
    """Every command of the bot."""
    reg = CommandRegistry()

    def read(kind: str, private: bool = False) -> Callable[[CommandCall], Awaitable[Outbound]]:
        async def handler(call: CommandCall) -> Outbound:
            a = call.args
            req = Request(
                kind,
                symbol=getattr(a, "symbol", None),
                timeframe=getattr(a, "timeframe", None),
                entry=getattr(a, "entry", None),
                stop=getattr(a, "stop", None),
                risk_pct=getattr(a, "risk", None),
            )
            return await answer(deps, call, req, private)

        return handler

    async def orders(call: CommandCall) -> Outbound:
        toolkit = deps.chat.toolkit
        try:
            row, account = await user_account(toolkit.deps, ToolContext(user_id=call.user_id), None)
            open_ = await account.open_orders()
        except (ToolError, AccountError) as exc:
            return Outbound(exc.user_message, private=True)
        if not open_:
            return Outbound(f"No open orders on account {row.label}.", private=True)
        lines = [f"Open orders on account {row.label} ({len(open_)}):", *(order_line(o) for o in open_)]
        lines.append("Cancel one with `/cancel <id>`, all with `/cancelall`.")
        return Outbound("\n".join(lines), private=True)

    async def cancel(call: CommandCall) -> Outbound:
        a: CancelArgs = call.args
        if a.order_id.lower() == "all":
            return await propose(deps, call, {"symbol": "*", "action": "cancel_all"})
        return await propose(deps, call, {"symbol": "*", "action": "cancel", "order_id": a.order_id})

    def order(action: str) -> Callable[[CommandCall], Awaitable[Outbound]]:
        async def handler(call: CommandCall) -> Outbound:
            a = call.args
            args: dict[str, Any] = {"symbol": getattr(a, "symbol", "*"), "action": action}
            if action == "open":
                args |= a.model_dump(exclude_none=True, exclude={"symbol"})
            if action == "close":
                args["close_pct"] = a.pct
            if action in ("set_stop", "set_take_profit"):
                args["price"] = a.price
            if getattr(a, "side", None):
                args["side"] = a.side
            return await propose(deps, call, args)

        return handler

    async def start(call: CommandCall) -> Outbound:
        name = call.inbound.display_name or "there"
        return Outbound(
            f"Hi {name}. I am Bastion: market structure, position risk and confirmed exits.\n"
            "Ask me anything in plain words, or use a command. Orders are only placed after you press Approve.\n"
            "`/connect paper` gives you a paper account to try everything safely.\n\n"
            + reg.help_text(call.permission)
        )

    async def help_(call: CommandCall) -> Outbound:
        return Outbound(reg.help_text(call.permission))

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

    async def accounts_text(user_id: int) -> str:
        async with deps.sessions() as session:
            rows = await accounts_repo.list_accounts(session, user_id)
            switches = await engine_repo.kill_switches(session, user_id)
        if not rows:
            return "No account connected yet: `/connect paper` or `/connect <exchange> <key> <secret>`."
        lines = ["**Accounts**"]
        for r in rows:
            armed = "armed" if not r.read_only else "read-only"
            lines.append(f"- `{r.label}` ({r.exchange_id}): {r.mode}, {armed}")
        if switches:
            lines.append("Kill switch engaged: " + ", ".join(f.scope for f in switches))
        return "\n".join(lines)

    async def set_mode(call: CommandCall, label: str | None, mode: AccountMode | None, armed: bool) -> Outbound:
        async with deps.sessions.begin() as session:
            rows = await accounts_repo.list_accounts(session, call.user_id)
            chosen = [r for r in rows if label is None or r.label.lower() == label.lower()]
            if not chosen:
                have = ", ".join(r.label for r in rows) or "none"
                return Outbound(f"No account labelled {label!r} (yours: {have}).")
            row = chosen[0]
            assert row.id is not None
            await engine_repo.set_account_mode(session, row.id, mode=mode, armed=armed)
            await audit.record(
                session,
                "account_mode",
                user_id=call.user_id,
                account_id=row.id,
                data={"mode": mode.value if mode else row.mode, "armed": armed},
            )
        return Outbound(await accounts_text(call.user_id))

    async def arm(call: CommandCall) -> Outbound:
        a: ArmArgs = call.args
        return await set_mode(call, a.label, AccountMode(a.mode), True)

    async def disarm(call: CommandCall) -> Outbound:
        return await set_mode(call, call.args.label, None, False)

    async def kill_switch(call: CommandCall, scope: str) -> Outbound:
        killed = call.args.action == "on"
        async with deps.sessions.begin() as session:
            await engine_repo.set_kill_switch(session, scope, killed, f"chat command by user {call.user_id}")
            await audit.record(session, "kill_switch", user_id=call.user_id, data={"scope": scope, "killed": killed})
        if killed:
            return Outbound(f"Kill switch {scope} ENGAGED: no automated orders until `/kill release`.")
        return Outbound(f"Kill switch {scope} released.")

    async def kill(call: CommandCall) -> Outbound:
        return await kill_switch(call, engine_repo.user_scope(call.user_id))

    async def killall(call: CommandCall) -> Outbound:
        return await kill_switch(call, engine_repo.GLOBAL)

    async def settings(call: CommandCall) -> Outbound:
        a: SettingsArgs = call.args
        namespace = prefs_namespace(call.user_id)
        prefs: dict[str, Any] = {}
        if deps.store is not None:
            item = await deps.store.aget(namespace, PREFS_KEY)
            prefs = dict(item.value) if item is not None else {}
        if a.key is not None:
            if a.value is None:
                raise UsageError(f"{a.key} needs a value")
            if a.key == "risk" and a.value > 10:
                return Outbound("Risk per trade must be at most 10%.")
            if deps.store is None:
                return Outbound("Preferences cannot be saved on this deployment.")
            prefs["risk_pct" if a.key == "risk" else "capital"] = a.value
            await deps.store.aput(namespace, PREFS_KEY, prefs)
        risk = prefs.get("risk_pct")
        cap = prefs.get("capital")
        lines = [
            "**Settings**",
            f"- Risk per trade: {f'{risk:g}%' if risk else 'default'}",
            f"- Capital for sizing: {f'{cap:,.2f} USDT' if cap else 'account balance'}",
            "Change with `/settings risk 1.5` or `/settings capital 5000`.",
            "",
            await accounts_text(call.user_id),
        ]
        return Outbound("\n".join(lines), private=True)

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

    T = Permission.TRADER
    for c in (
        Command("start", "Welcome and the list of commands", start),
        Command("help", "What I can do", help_),
        Command("price", "Last price and 24h change", read("price"), SymbolArgs, "<symbol>", "/price btc"),
        Command("levels", "Support/resistance with grade and touches", read("levels"), SymbolTfArgs,
                "<symbol> [15m|1h|4h|1d]", "/levels eth 4h", aliases=("structure",)),
        Command("chart", "Chart with levels and your position", read("chart"), SymbolTfArgs,
                "<symbol> [15m|1h|4h|1d]", "/chart sol 1h"),
        Command("analyze", "Levels, setup, scenarios, sizing and verdict", read("analyze"), SymbolTfArgs,
                "<symbol> [15m|1h|4h|1d]", "/analyze btc 4h"),
        Command("overview", "Funding, open interest, volatility, book imbalance", read("overview"), SymbolArgs,
                "<symbol>", "/overview sol"),
        Command("size", "Position size for an entry and a stop", read("size"), SizeArgs,
                "<symbol> <entry> <stop> [risk%]", "/size btc 60000 59000 1"),
        Command("positions", "Your open positions", read("positions", private=True), permission=T),
        Command("balance", "Your account balance", read("balance", private=True), permission=T),
        Command("risk", "Risk engine check of one of your positions", read("evaluate", private=True), SymbolTfArgs,
                "<symbol> [timeframe]", "/risk sol", permission=T),
        Command("long", "Open a long with a stop (asks for confirmation)", order("open"), EntryArgs, ENTRY_USAGE,
                "/long sol 0.1 stop auto", permission=T, parse=entry_parser("long")),
        Command("short", "Open a short with a stop (asks for confirmation)", order("open"), EntryArgs, ENTRY_USAGE,
                "/short btc 1% stop 97000 tp 93000,91000 lev 3", permission=T, parse=entry_parser("short")),
        Command("close", "Close all or part of a position (asks for confirmation)", order("close"), CloseArgs,
                "<symbol> [half|25%|all] [long|short]", "/close sol half", permission=T, parse=parse_close),
        Command("stop", "Set the stop of a position (asks for confirmation)", order("set_stop"), PriceArgs,
                "<symbol> <price> [long|short]", "/stop sol 140", permission=T, parse=parse_trigger),
        Command("tp", "Set the take-profit of a position (asks for confirmation)", order("set_take_profit"),
                PriceArgs, "<symbol> <price> [long|short]", "/tp sol 260", permission=T, parse=parse_trigger),
        Command("breakeven", "Move a position's stop to its entry (asks for confirmation)",
                order("move_stop_breakeven"), SideArgs, "<symbol> [long|short]", "/breakeven btc", permission=T,
                aliases=("be",)),
        Command("orders", "Your open orders (limit entries, stops, targets)", orders, permission=T),
        Command("cancel", "Cancel an open order (asks for confirmation)", cancel, CancelArgs, "<order id|all>",
                "/cancel all", permission=T),
        Command("flatten", "Close every position in profit (one confirmation listing them)",
                order("flatten_winners"), permission=T),
        Command("closeall", "Close every open position (one confirmation listing them)", order("close_all"),
                permission=T),
        Command("cancelall", "Cancel every open order (one confirmation listing them)", order("cancel_all"),
                permission=T),
        Command("connect", "Connect an exchange account (keys are stored encrypted)", connect, ConnectArgs,
                "<exchange> [api_key secret [passphrase]]", "/connect paper", permission=T, private_only=True,
                parse=parse_connect),
        Command("arm", "Allow orders on an account (advise: after your press; auto: within guards)", arm, ArmArgs,
                "[advise|auto] [label]", "/arm advise", permission=T),
        Command("disarm", "Make an account read-only again", disarm, LabelArgs, "[label]", permission=T),
        Command("kill", "Stop all automated orders on your accounts (/kill release undoes it)", kill, KillArgs,
                "[release]", permission=T),
        Command("settings", "Your risk %, capital and accounts", settings, SettingsArgs,
                "[risk <pct> | capital <usdt>]", "/settings risk 1.5", permission=T),
        Command("killall", "Admin: stop automated orders for everyone", killall, KillArgs, "[release]",
                permission=Permission.ADMIN),
        Command("grant", "Admin: give a user a role", grant_role, GrantArgs, "<user id> <trader|admin>",
                "/grant 123456 trader", permission=Permission.ADMIN),
        Command("revoke", "Admin: take a role away", revoke_role, GrantArgs, "<user id> <trader|admin>",
                permission=Permission.ADMIN),
    ):
        reg.add(c)
    return reg
