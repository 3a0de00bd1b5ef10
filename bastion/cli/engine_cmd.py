"""`bastion engine arm | disarm | kill | status` and `bastion risk check`: the risk engine from the shell."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import typer

from bastion.app import Services
from bastion.cli import proposals_cmd
from bastion.cli.common import console, fail, run_with_services, settings_or_exit
from bastion.cli.keys_cmd import USER_OPTION, _user_ref
from bastion.cli.output import JSON_OPTION, Column, print_json, print_table
from bot.console.adapter import CONSOLE_USER, ensure_console_user
from bot.console.adapter import PLATFORM as CONSOLE_PLATFORM
from engine.monitor.market_view import StructureMarketViews
from engine.monitor.monitor import CycleReport, Monitor
from engine.monitor.notifier import PrintingNotifier
from engine.monitor.runner import run_periodically
from engine.risk.context import RiskContext, RiskPosition
from engine.risk.decision import Decision
from engine.risk.evaluate import evaluate, triggered
from engine.risk.merge import merge
from storage.models import AccountMode
from storage.repositories import accounts as accounts_repo
from storage.repositories import audit
from storage.repositories import engine as engine_repo
from storage.repositories import users as users_repo
from storage.repositories.users import find_user
from storage.types import utcnow
from tools.market.replay import ReplayMarketData
from tools.market.symbols import normalise_symbol
from tools.numbers import price_text


def register(app: typer.Typer) -> None:
    """Add the `engine` group and the `risk` group."""
    app.add_typer(_engine_group(), name="engine")
    app.add_typer(_risk_group(), name="risk")


def _engine_group() -> typer.Typer:
    group = typer.Typer(help="Arm, disarm and stop automated execution; answer the monitor's proposals.",
                        no_args_is_help=True)  # fmt: skip
    proposals_cmd.register(group)

    @group.command("arm")
    def arm(
        label: str = typer.Option("main", "--label", "-l", help="Account label."),
        user: str = USER_OPTION,
        mode: AccountMode = typer.Option(AccountMode.ADVISE, "--mode", help="advise (buttons) or auto (guards)."),
    ) -> None:
        """Allow orders on an account (advise: after a button press; auto: within the guards)."""
        _set_mode(user, label, mode=mode, armed=True)

    @group.command("disarm")
    def disarm(label: str = typer.Option("main", "--label", "-l"), user: str = USER_OPTION) -> None:
        """Make an account read-only again (no orders, proposals only)."""
        _set_mode(user, label, mode=None, armed=False)

    @group.command("kill")
    def kill(
        user: str | None = typer.Option(None, "--user", "-u", help="Only this user's automation (default: all)."),
        reason: str = typer.Option("operator kill switch", "--reason", help="Recorded with the switch."),
        release: bool = typer.Option(False, "--release", help="Release the kill switch instead."),
    ) -> None:
        """Stop all automated execution at once (persisted; survives restarts). --release undoes it."""
        ref = _user_ref(user) if user else None

        async def go(services: Services) -> None:
            async with services.sessions.begin() as session:
                scope = engine_repo.GLOBAL
                if ref:
                    owner = await find_user(session, *ref)
                    assert owner.id is not None
                    scope = engine_repo.user_scope(owner.id)
                await engine_repo.set_kill_switch(session, scope, not release, reason)
                await audit.record(
                    session, "kill_switch", data={"scope": scope, "killed": not release, "reason": reason}
                )

        run_with_services(go)
        shown = user or engine_repo.GLOBAL  # as typed (platform:id), not the stored scope's row id
        console.print(f"kill switch {shown}: {'released' if release else 'ENGAGED — automated execution stopped'}")

    @group.command("watch")
    def watch(
        interval: float = typer.Option(60.0, "--interval", min=1.0, help="Seconds between cycles."),
        cycles: int | None = typer.Option(None, "--cycles", min=1, help="Stop after this many cycles."),
        timeframe: str = typer.Option("1h", "--tf", help="Evaluation timeframe of the rules."),
    ) -> None:
        """Run the position monitor here: evaluate advising/auto accounts, print alerts and proposals."""

        async def go(services: Services) -> int:
            printer = PrintingNotifier(lambda line: console.print(line, highlight=False), services.sessions)
            monitor = Monitor(
                services.sessions,
                open_account=services.open_account,
                views=StructureMarketViews(services.market),
                executor=services.executor,
                notifier=printer,
                timeframe=timeframe,
                approval_ttl=timedelta(seconds=services.settings.risk.approval_ttl_s),
            )

            def show(report: CycleReport) -> None:
                placed = sum(e.placed for e in report.executions)
                errors = f", errors: {'; '.join(report.errors)}" if report.errors else ""
                line = f"cycle: {report.positions} positions, {report.approvals} proposals, {placed} orders"
                console.print(f"{line}, {report.alerts} alerts{errors}", highlight=False)
                for action in report.actions:
                    console.print(f"  {action}", highlight=False, markup=False)

            return await run_periodically(monitor, interval, cycles=cycles, on_cycle=show)

        run_with_services(go)

    @group.command("status")
    def status(as_json: bool = JSON_OPTION) -> None:
        """Kill switches, and every account's mode, arming and automated actions in the last 24 h."""

        async def go(services: Services) -> tuple[list[str], list[dict[str, Any]]]:
            async with services.sessions() as session:
                flags = {f.scope: f for f in await engine_repo.kill_switches(session)}
                rows: list[dict[str, Any]] = []
                since = utcnow() - timedelta(hours=24)
                accounts = await accounts_repo.list_accounts(session)
                refs = await users_repo.user_refs(session, (a.user_id for a in accounts))
                for a in accounts:
                    assert a.id is not None
                    flags |= {f.scope: f for f in await engine_repo.kill_switches(session, a.user_id)}
                    pnl = await engine_repo.realised_pnl_since(session, a.id, since)
                    rows.append(
                        {
                            "account": a.id,
                            "user": refs.get(a.user_id, f"user #{a.user_id}"),
                            "exchange": a.exchange_id,
                            "label": a.label,
                            "mode": a.mode,
                            "armed": not a.read_only,
                            "auto_actions_24h": await engine_repo.automated_actions_since(session, a.id, since),
                            "realised_pnl_24h_usdt": round(pnl, 2),
                        }
                    )
                names = await engine_repo.scope_names(session, flags)
                return sorted(f"{names[scope]} ({flag.reason})" for scope, flag in flags.items()), rows

        switches, rows = run_with_services(go)
        if as_json:
            print_json(console, {"kill_switches": switches, "accounts": rows})
            return
        console.print("kill switches: " + (", ".join(switches) if switches else "none engaged"))
        columns = [Column("account"), Column("user", numeric=False), Column("exchange", numeric=False),
                   Column("label", numeric=False), Column("mode", numeric=False), Column("state", numeric=False),
                   Column("auto actions 24h", optional=True), Column("realised 24h")]  # fmt: skip
        cells = [
            [str(r["account"]), r["user"], r["exchange"], r["label"], r["mode"], "armed" if r["armed"] else "read-only",
             str(r["auto_actions_24h"]), f"{r['realised_pnl_24h_usdt']:+,.2f} USDT"]
            for r in rows
        ]  # fmt: skip
        print_table(console, columns, cells)

    return group


def _set_mode(user: str, label: str, *, mode: AccountMode | None, armed: bool) -> None:
    platform, uid = _user_ref(user)

    async def go(services: Services) -> tuple[str, bool]:
        if (platform, uid) == (CONSOLE_PLATFORM, CONSOLE_USER):
            # The console user and its paper account exist from the first `bastion chat`; a fresh install that
            # arms them first gets them the same way.
            await ensure_console_user(services.sessions)
        async with services.sessions.begin() as session:
            owner = await find_user(session, platform, uid)
            assert owner.id is not None
            account = await accounts_repo.get_account(session, owner.id, label)
            assert account.id is not None
            account = await engine_repo.set_account_mode(session, account.id, mode=mode, armed=armed)
            await audit.record(
                session,
                "account_mode",
                user_id=owner.id,
                account_id=account.id,
                data={"mode": account.mode, "armed": armed},
            )
            return account.mode, not account.read_only

    final_mode, is_armed = run_with_services(go)
    console.print(f"account {label!r} of {user}: mode {final_mode}, {'ARMED' if is_armed else 'read-only'}")


def _risk_group() -> typer.Typer:
    group = typer.Typer(help="Ask the risk engine about a position.", no_args_is_help=True)

    @group.command("check")
    def check(
        symbol: str = typer.Option(..., "--symbol", "-s", help="e.g. SOL, BTCUSDT, ETH/USDT:USDT."),
        side: str = typer.Option(..., "--side", help="long or short."),
        entry: float = typer.Option(..., "--entry", min=0.0, help="Entry price."),
        size: float = typer.Option(..., "--size", min=0.0, help="Size in base units."),
        stop: float | None = typer.Option(None, "--stop", help="Stop-loss price (omit for none)."),
        leverage: float = typer.Option(1.0, "--leverage", min=1.0, help="Leverage."),
        targets: str = typer.Option("", "--targets", help="Comma-separated T1,T2,T3 (default: from structure)."),
        timeframe: str = typer.Option("1h", "--tf", help="Evaluation timeframe."),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="Evaluate on replayed candle files."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Print the engine's decision for a position, the rule behind it and every rule that fired."""
        if side not in ("long", "short"):
            raise fail("--side must be long or short", 2)
        position_side: Literal["long", "short"] = "long" if side == "long" else "short"
        try:
            target_list = [float(t) for t in targets.split(",") if t.strip()]
        except ValueError:
            raise fail("--targets must be numbers separated by commas, e.g. 105,110", 2) from None
        given = [("--entry", entry), ("--size", size), ("--stop", stop), ("--leverage", leverage)]
        for option, value in given + [("--targets", t) for t in target_list]:
            if value is not None and not math.isfinite(value):
                raise fail(f"{option} must be a finite number, not {value}", 2)
        if entry <= 0 or size <= 0:
            raise fail("--entry and --size must be above 0", 2)
        if stop is not None and stop <= 0:
            raise fail(f"--stop must be a price above 0 (got {stop:g}); omit it for a position without a stop", 2)
        settings = settings_or_exit()

        async def go(services: Services) -> dict[str, Any]:
            market = ReplayMarketData(data_dir) if data_dir else services.market
            unified = normalise_symbol(symbol)
            view = await StructureMarketViews(market).view(unified, timeframe)
            plan_targets = target_list
            if not plan_targets and view.structure is not None:
                from tools.structure.targets import plan_from_report

                plan_targets = [t.price for t in plan_from_report(view.structure, position_side, entry=entry).targets]
            ctx = RiskContext(
                position=RiskPosition(
                    symbol=unified,
                    side=position_side,
                    entry=entry,
                    size=size,
                    stop=stop,
                    leverage=leverage,
                    targets=plan_targets,
                ),
                market=view,
            )
            decision = evaluate(ctx)
            if not settings.model.offline and not decision.hard:
                decision = await _with_model(services, ctx, decision)
            fired = [d for d in triggered(ctx) if d.rule != decision.rule]
            return {
                "position": ctx.position.model_dump(mode="json"),
                "price": view.price,
                "atr": view.atr,
                "simulated": bool(getattr(market, "simulated", False)),
                "decision": decision.model_dump(mode="json"),
                "also_fired": [{"rule": d.rule, "action": d.action} for d in fired],
            }

        result = run_with_services(go, settings)
        if as_json:
            print_json(console, result)
            return
        _print_check(result)

    return group


def _print_check(result: dict[str, Any]) -> None:
    """The engine's decision in words: the position, the rule behind it, warnings, notes and the other rules."""
    pos, decision = result["position"], result["decision"]
    label = " (SIMULATED market)" if result["simulated"] else ""
    console.print(
        f"{pos['symbol']} {pos['side']} @ {price_text(pos['entry'], pos['symbol'])}: price "
        f"{price_text(result['price'], pos['symbol'])}, ATR {result['atr']:.4g}{label}",
        highlight=False,
    )
    extra = "".join(f" {k}={decision[k]:g}" for k in ("close_pct", "new_stop") if decision[k])
    console.print(
        f"[bold]{decision['action']}[/bold] (confidence {decision['confidence']:.2f}, rule "
        f"{decision['rule']}{', hard rule' if decision['hard'] else ''}){extra}"
    )
    console.print(decision["reasoning"], highlight=False)
    for w in decision["warnings"]:
        console.print(f"warning: {w}", highlight=False)
    for note in decision["notes"]:
        console.print(f"note: {note}", highlight=False)
    if result["also_fired"]:
        fired = "; ".join(f"{d['rule']} → {d['action']}" for d in result["also_fired"])
        console.print("also fired: " + fired, highlight=False)


async def _with_model(services: Services, ctx: RiskContext, rules_decision: Decision) -> Decision:
    from engine.risk.opinion import RiskOpinion
    from inference import ModelClient

    async with ModelClient(services.settings.model) as client:
        proposal, error = await RiskOpinion(client, timeout_s=services.settings.model.timeout_s).ask(ctx)
    return merge(ctx, rules_decision, proposal, error)
