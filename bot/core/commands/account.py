"""Account commands of a trader: positions, balance, open orders, arming an account and preferences."""

from __future__ import annotations

from typing import Any

from bot.core.commands.args import ArmArgs, LabelArgs, SettingsArgs
from bot.core.commands.deps import CommandDeps, read
from bot.core.messages import Outbound
from bot.core.registry import Command, CommandCall, CommandRegistry, Permission, UsageError
from storage.models import AccountMode
from storage.repositories import accounts as accounts_repo
from storage.repositories import audit
from storage.repositories import engine as engine_repo
from tools.agent_tools.base import PREFS_KEY, ToolContext, ToolError, prefs_namespace, user_account
from tools.agent_tools.batch import order_line
from tools.exchange.errors import AccountError


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add the account commands (trader permission)."""

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

    async def accounts_text(user_id: int) -> str:
        async with deps.sessions() as session:
            rows = await accounts_repo.list_accounts(session, user_id)
            switches = await engine_repo.kill_switches(session, user_id)
            names = await engine_repo.scope_names(session, (f.scope for f in switches))
        if not rows:
            return "No account connected yet: `/connect paper` or `/connect <exchange> <key> <secret>`."
        lines = ["**Accounts**"]
        for r in rows:
            armed = "armed" if not r.read_only else "read-only"
            lines.append(f"- `{r.label}` ({r.exchange_id}): {r.mode}, {armed}")
        if switches:
            lines.append("Kill switch engaged: " + ", ".join(names[f.scope] for f in switches))
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

    T = Permission.TRADER
    for c in (
        Command("positions", "Your open positions", read(deps, "positions", private=True), permission=T),
        Command("balance", "Your account balance", read(deps, "balance", private=True), permission=T),
        Command("orders", "Your open orders (limit entries, stops, targets)", orders, permission=T),
        Command("arm", "Allow orders on an account (advise: after your press; auto: within guards)", arm, ArmArgs,
                "[advise|auto] [label]", "/arm advise", permission=T),
        Command("disarm", "Make an account read-only again", disarm, LabelArgs, "[label]", permission=T),
        Command("settings", "Your risk %, capital and accounts", settings, SettingsArgs,
                "[risk <pct> | capital <usdt>]", "/settings risk 1.5", permission=T),
    ):
        reg.add(c)
