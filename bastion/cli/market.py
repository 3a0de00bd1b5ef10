"""`bastion price` and `bastion candles`: market data in the terminal, offline by default."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import pandas as pd
import typer
from rich.console import Console

from bastion.cli.common import describe_settings_error, read_settings
from bastion.cli.output import Column, print_json, print_table
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
OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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
    as_json: JsonOpt = False,
) -> None:
    """Show the last price, 24h change and spread of a symbol."""
    ticker = _run(source, data_dir, at, seed, lambda md: _in_range(md, symbol, "1h", at, md.ticker(symbol)))
    console = Console()
    if as_json:
        print_json(console, ticker.model_dump(mode="json"))
        return
    columns = [Column("last"), Column("24h"), Column("bid", optional=True), Column("ask", optional=True),
               Column("source", numeric=False, optional=True), Column("time (UTC)", numeric=False)]  # fmt: skip
    row = [
        _fmt_price(ticker.last),
        _fmt_change(ticker),
        _fmt_price(ticker.bid),
        _fmt_price(ticker.ask),
        ticker.source,
        f"{ticker.timestamp:%Y-%m-%d %H:%M:%S}",
    ]
    print_table(console, columns, [row], title=f"{ticker.symbol}{_label(ticker.simulated)}")


def candles(
    symbol: Annotated[str, typer.Argument(help="Symbol in any spelling: eth, ETHUSDT, ETH/USDT:USDT.")],
    tf: Annotated[str, typer.Option("--tf", help=f"Timeframe: {', '.join(TIMEFRAMES)}.")] = "1h",
    limit: Annotated[int, typer.Option("--limit", min=1, max=5000, help="Number of candles.")] = 20,
    source: SourceOpt = None,
    data_dir: DataDirOpt = None,
    at: AtOpt = None,
    seed: SeedOpt = 0,
    as_json: JsonOpt = False,
) -> None:
    """Show the last candles of a symbol (live: the newest may still be forming)."""
    if tf not in TIMEFRAMES:
        _fail(f"Unsupported timeframe {tf!r}; use one of {', '.join(TIMEFRAMES)}.", code=2)
    frame = _run(source, data_dir, at, seed, lambda md: _in_range(md, symbol, tf, at, md.ohlcv(symbol, tf, limit)))
    simulated = bool(frame.attrs.get("simulated"))
    console = Console()
    if as_json:
        rows = [
            {"time": f"{stamp:%Y-%m-%dT%H:%M:%SZ}", **{c: float(row[c]) for c in OHLCV_COLUMNS}}
            for stamp, row in frame.iterrows()
            if isinstance(stamp, pd.Timestamp)
        ]
        attrs = {k: frame.attrs.get(k) for k in ("symbol", "source", "simulated", "forming")}
        print_json(console, {**attrs, "timeframe": tf, "candles": rows})
        return
    title = f"{frame.attrs.get('symbol', symbol.upper())} {tf}{_label(simulated)}"
    columns = [Column("time (UTC)", numeric=False), *(Column(c) for c in ("open", "high", "low", "close")),
               Column("volume", optional=True)]  # fmt: skip
    cells: list[list[str]] = []
    for stamp, row in frame.iterrows():
        assert isinstance(stamp, pd.Timestamp)
        values = [_fmt_price(float(row[c])) for c in ("open", "high", "low", "close")]
        cells.append([f"{stamp:%Y-%m-%d %H:%M}", *values, f"{float(row['volume']):,.2f}"])
    print_table(console, columns, cells, title=title, caption=_caption(frame))


async def _in_range(md: MarketData, symbol: str, tf: str, at: str | None, call: Awaitable[T]) -> T:
    """`call`, once `--at` is known to lie inside the replayed data (a time outside it is refused, not clamped)."""
    if at and isinstance(md, ReplayMarketData):
        first, last = md.span(symbol, tf)
        when = pd.Timestamp(at)
        when = when.tz_localize("UTC") if when.tzinfo is None else when
        if not first <= when.to_pydatetime() <= last:
            call.close()  # type: ignore[attr-defined]
            raise MarketDataError(
                f"--at {at} is outside the replayed {md.resolve(symbol)} {tf} data "
                f"({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC)."
            )
    return await call


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
    source = frame.attrs.get("source", "?")
    parts = [f"source: {source}", f"{len(frame)} candles"]
    if frame.attrs.get("forming"):
        # A replayed period is not forming: it is cut at the replay clock, built from the finer candles closed by then.
        replayed = source == "replay"
        parts.append("last candle partial, up to the replay time" if replayed else "last candle still forming")
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
