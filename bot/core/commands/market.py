"""Market commands anyone may use: price, levels, chart, analysis and overview (the calculator: `sizing`)."""

from __future__ import annotations

from bot.core.commands.args import SymbolArgs, SymbolTfArgs
from bot.core.commands.deps import CommandDeps, read
from bot.core.registry import Command, CommandRegistry


def register(reg: CommandRegistry, deps: CommandDeps) -> None:
    """Add the read-only market commands."""
    for c in (
        Command("price", "Last price and 24h change", read(deps, "price"), SymbolArgs, "<symbol>", "/price btc"),
        Command("levels", "Support/resistance with grade and touches", read(deps, "levels"), SymbolTfArgs,
                "<symbol> [15m|1h|4h|1d]", "/levels eth 4h", aliases=("structure",)),
        Command("chart", "Chart with levels and your position", read(deps, "chart"), SymbolTfArgs,
                "<symbol> [15m|1h|4h|1d]", "/chart sol 1h"),
        Command("analyze", "Levels, setup, scenarios, sizing and verdict", read(deps, "analyze"), SymbolTfArgs,
                "<symbol> [15m|1h|4h|1d]", "/analyze btc 4h"),
        Command("overview", "Funding, open interest, volatility, book imbalance", read(deps, "overview"),
                SymbolArgs, "<symbol>", "/overview sol"),
    ):
        reg.add(c)
