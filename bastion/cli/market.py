"""`bastion price` and `bastion candles`: market data in the terminal, offline by default."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from bastion.cli.common import describe_settings_error, read_settings
from bastion.settings import SettingsError
from tools.market.base import TIMEFRAMES, MarketData, MarketDataError, Ticker
from tools.market.factory import build_market_data
from tools.market.replay import ReplayMarketData
from tools.market.simulated import SimulatedMarketData

T = TypeVar("T")

SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="simulated | ccxt | replay (default: BASTION_EXCHANGE__MARKET_DATA)."),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder of candle files (e.g. ../shared/data/ohlcv); implies --source replay."),
]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Replay/simulated time, ISO-8601 UTC (default: end of data / now)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the simulated market.")]


def register(app: typer.Typer) -> None:
    """Add the `price` and `candles` commands to the root CLI."""
    app.command("price")(price)
    app.command("candles")(candles)


def price(
    symbol: Annotated[str, typer.Argument(help="Symbol in any spelling: btc, BTCUSDT, BTC/USDT:USDT.")],
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    at: AtOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Show the last price, 24h change and spread of a symbol."""
    ticker = _run(source, data_dir, at, seed, lambda md: md.ticker(symbol))
    console = Console()
    table = Table(title=f"{ticker.symbol}{_label(ticker.simulated)}", show_header=True)
    for column in ("last", "24h", "bid", "ask", "source", "time (UTC)"):
        table.add_column(column, justify="right" if column not in ("source", "time (UTC)") else "left", no_wrap=True)
    table.add_row(
        _fmt_price(ticker.last),
        _fmt_change(ticker),
        _fmt_price(ticker.bid),
        _fmt_price(ticker.ask),
        ticker.source,
        f"{ticker.timestamp:%Y-%m-%d %H:%M:%S}",
    )
    console.print(table)


def candles(
    symbol: Annotated[str, typer.Argument(help="Symbol in any spelling: eth, ETHUSDT, ETH/USDT:USDT.")],
    tf: Annotated[str, typer.Option("--tf", help=f"Timeframe: {', '.join(TIMEFRAMES)}.")] = "1h",
    limit: Annotated[int, typer.Option("--limit", min=1, max=5000, help="Number of candles.")] = 20,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    at: AtOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Show the last candles of a symbol (the newest may still be forming)."""
    if tf not in TIMEFRAMES:
        _fail(f"Unsupported timeframe {tf!r}; use one of {', '.join(TIMEFRAMES)}.", code=2)
    frame = _run(source, data_dir, at, seed, lambda md: md.ohlcv(symbol, tf, limit))
    simulated = bool(frame.attrs.get("simulated"))
    console = Console()
    title = f"{frame.attrs.get('symbol', symbol.upper())} {tf}{_label(simulated)}"
    table = Table(title=title, caption=_caption(frame))
    for column in ("time (UTC)", "open", "high", "low", "close", "volume"):
        table.add_column(column, justify="left" if column.startswith("time") else "right", no_wrap=True)
    for stamp, row in frame.iterrows():
        assert isinstance(stamp, pd.Timestamp)
        values = [_fmt_price(float(row[c])) for c in ("open", "high", "low", "close")]
        table.add_row(f"{stamp:%Y-%m-%d %H:%M}", *values, f"{float(row['volume']):,.2f}")
    console.print(table)


def _run(
    source: str | None, data_dir: Path | None, at: str | None, seed: int, call: Callable[[MarketData], Awaitable[T]]
) -> T:
    market = _provider(source, data_dir, at, seed)

    async def go() -> T:
        try:
            return await call(market)
        finally:
            await market.close()

    try:
        return asyncio.run(go())
    except MarketDataError as exc:
        _fail(exc.user_message)


def _provider(source: str | None, data_dir: Path | None, at: str | None, seed: int) -> MarketData:
    try:
        settings = read_settings().exchange
    except SettingsError as exc:
        _fail(describe_settings_error(exc), code=2)
    kind = source or ("replay" if data_dir is not None else settings.market_data)
    if kind not in ("simulated", "ccxt", "replay"):
        _fail(f"Unknown source {kind!r}; use simulated, ccxt or replay.", code=2)
    try:
        when = pd.Timestamp(at) if at else None
    except ValueError:
        _fail(f"--at {at!r} is not an ISO-8601 time.", code=2)
    try:
        if kind == "replay":
            return ReplayMarketData(data_dir or settings.data_dir, now=when)
        if kind == "simulated":
            return SimulatedMarketData(seed=seed, now=when)
        return build_market_data(settings.model_copy(update={"market_data": kind}))
    except MarketDataError as exc:
        _fail(exc.user_message)


def _fail(message: str, code: int = 1) -> NoReturn:
    # soft_wrap: one message, one line, whatever the terminal width (scripts grep it).
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"[red]{message}[/red]")
    raise typer.Exit(code)


def _label(simulated: bool) -> str:
    return " [bold yellow](SIMULATED)[/bold yellow]" if simulated else ""


def _caption(frame: pd.DataFrame) -> str:
    parts = [f"source: {frame.attrs.get('source', '?')}", f"{len(frame)} candles"]
    if frame.attrs.get("forming"):
        parts.append("last candle still forming")
    return " · ".join(parts)


def _fmt_price(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.2f}"
    if abs(value) >= 1:
        return f"{value:,.4f}"
    return f"{value:.6g}"


def _fmt_change(ticker: Ticker) -> str:
    if ticker.change_24h_pct is None:
        return "-"
    colour = "green" if ticker.change_24h_pct >= 0 else "red"
    return f"[{colour}]{ticker.change_24h_pct:+.2f}%[/{colour}]"
