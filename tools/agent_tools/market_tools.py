"""Read-only market tools: price, market overview, structure, chart."""

from __future__ import annotations

import asyncio
from typing import Any

from tools.agent_tools.base import ToolContext, ToolDeps, num, symbol_of, user_account
from tools.agent_tools.schemas import ChartArgs, StructureArgs, SymbolArgs
from tools.agent_tools.setup_score import ALIGNMENT_TIMEFRAMES, alignment_json, mcf_json
from tools.agent_tools.structure_data import structure_json, structure_of
from tools.market.base import MarketDataError
from tools.market.replay import SOURCE as REPLAY_SOURCE

# How long a market tool's answer is shared by everyone asking about the same symbol (SPEC freshness: price
# 0.5 s, live candles 1 s). Orders never rely on these: propose_order reads its own fresh ticker.
OVERVIEW_TTL_S = 0.5
STRUCTURE_TTL_S = 1.0
# Premium context is a handful of paid requests per symbol: shared for a minute, well inside the providers' limits.
PREMIUM_TTL_S = 60.0


async def get_price(deps: ToolDeps, ctx: ToolContext, args: SymbolArgs) -> dict[str, Any]:
    """Last price, 24h change and bid/ask."""
    t = await deps.market.ticker(symbol_of(args.symbol))
    return {
        "symbol": t.symbol,
        "last": num(t.last),
        "change_24h_pct": round(t.change_24h_pct, 2) if t.change_24h_pct is not None else None,
        "bid": num(t.bid),
        "ask": num(t.ask),
        "source": t.source,
        "simulated": t.simulated,
        "time": t.timestamp.isoformat(),
        **replay_as_of(t),
    }


def replay_as_of(ticker: Any) -> dict[str, str]:
    """{"replay_as_of": "2026-02-19 03:00 UTC"} for replayed data (answers say how old it is), else {}."""
    if ticker is None or ticker.source != REPLAY_SOURCE:
        return {}
    return {"replay_as_of": ticker.timestamp.strftime("%Y-%m-%d %H:%M UTC")}


async def _optional(coro: Any) -> Any:
    try:
        return await coro
    except MarketDataError:
        return None


async def get_market_overview(deps: ToolDeps, ctx: ToolContext, args: SymbolArgs) -> dict[str, Any]:
    """Price, funding, open interest, volatility regime, book imbalance and long/short ratio."""
    symbol = symbol_of(args.symbol)
    return dict(await deps.results.get(("overview", symbol), OVERVIEW_TTL_S, lambda: market_overview(deps, symbol)))


async def market_overview(deps: ToolDeps, symbol: str) -> dict[str, Any]:
    """The overview of one symbol, freshly read from the provider."""
    data = await market_readings(deps.market, symbol)
    return {**data, **await _premium(deps, data["symbol"])}


async def market_readings(md: Any, symbol: str) -> dict[str, Any]:
    """Price, funding, open interest, volatility, book and long/short of one symbol (each None when unavailable)."""
    ticker = await md.ticker(symbol)
    funding, oi, vol, book, ls = await asyncio.gather(
        _optional(md.funding(symbol)),
        _optional(md.open_interest(symbol)),
        _optional(md.volatility(symbol, "1h")),
        _optional(md.book_imbalance(symbol)),
        _optional(md.long_short_ratio(symbol)),
    )
    return {
        "symbol": ticker.symbol,
        "simulated": ticker.simulated,
        **replay_as_of(ticker),
        "last": num(ticker.last),
        "change_24h_pct": round(ticker.change_24h_pct, 2) if ticker.change_24h_pct is not None else None,
        "funding_pct_per_8h": round(funding.rate * 100 * 8 / funding.interval_hours, 4) if funding else None,
        "open_interest_usd": num(oi.value_usd, 4) if oi else None,
        "open_interest_change_pct": round(oi.change_pct, 2) if oi and oi.change_pct is not None else None,
        "volatility": {
            "atr_1h": num(vol.atr),
            "atr_pct": round(vol.atr_pct_of_price, 2),
            "percentile": round(vol.percentile, 1),
            "regime": vol.regime,
        }
        if vol
        else None,
        "book_imbalance": round(book.imbalance, 3) if book else None,
        "long_short_ratio": round(ls.ratio, 3) if ls else None,
    }


async def _premium(deps: ToolDeps, symbol: str) -> dict[str, Any]:
    """Premium derivatives and on-chain context, only when a provider is configured (each part may be n/a)."""
    premium = deps.premium
    if premium is None:
        return {}
    return {
        "premium": dict(await deps.results.get(("premium", symbol), PREMIUM_TTL_S, lambda: premium.context(symbol)))
    }


async def get_structure(deps: ToolDeps, ctx: ToolContext, args: StructureArgs) -> dict[str, Any]:
    """Levels with grade and touches, trendlines, volume profile and long/short trade plans."""
    symbol, tf = symbol_of(args.symbol), args.timeframe

    async def load() -> dict[str, Any]:
        report, frame = await structure_of(deps, symbol, tf)
        ticker = await _optional(deps.market.ticker(symbol))
        live = float(ticker.last) if ticker is not None else None  # None: plans start from the last close
        data = {**structure_json(report, deps.market.simulated, price=live), **replay_as_of(ticker)}
        overview = await _optional(
            deps.results.get(("overview", report.symbol), OVERVIEW_TTL_S, lambda: market_overview(deps, symbol))
        )
        data["mcf"] = mcf_json(report, overview, frame)
        data["alignment"] = await _alignment(deps, symbol, tf, report)
        return data

    return dict(await deps.results.get(("structure", symbol, tf), STRUCTURE_TTL_S, load))


async def _alignment(deps: ToolDeps, symbol: str, tf: str, report: Any) -> dict[str, Any]:
    """The bias of every alignment timeframe (the asked one reused); one without candles is listed as missing."""
    reports: dict[str, Any] = {}
    missing: list[str] = []
    for frame_tf in ALIGNMENT_TIMEFRAMES:
        if frame_tf == tf:
            reports[frame_tf] = report
            continue
        try:
            reports[frame_tf] = (await structure_of(deps, symbol, frame_tf))[0]
        except MarketDataError:
            missing.append(frame_tf)
    return alignment_json(report.symbol, reports, missing)


async def get_chart(deps: ToolDeps, ctx: ToolContext, args: ChartArgs) -> dict[str, Any]:
    """Render a candlestick chart with levels and volume profile (and the user's position); the PNG stays in
    memory (`deps.charts`) and the result carries its short id, which the reply turns back into the picture."""
    from tools.charts import ChartSource

    symbol = symbol_of(args.symbol)
    report, frame = await structure_of(deps, symbol, args.timeframe)
    lines = None
    if args.with_position:
        lines = await _position_lines(deps, ctx, symbol)
    ticker = await _optional(deps.market.ticker(symbol))
    live = float(ticker.last) if ticker is not None else None  # None: no price marker; the candles are still right
    source = ChartSource(deps.market.name, deps.market.simulated, live)
    png = await deps.renderer.structure_chart(frame, report, lines, 240, source)
    data = structure_json(report, deps.market.simulated, per_side=3)
    return {
        "chart": deps.charts.put(png),
        "symbol": symbol,
        "timeframe": args.timeframe,
        "simulated": data["simulated"],
        "close": data["close"],
        "resistances": data["resistances"],
        "supports": data["supports"],
        "position_drawn": lines is not None,
    }


async def _position_lines(deps: ToolDeps, ctx: ToolContext, symbol: str) -> Any:
    from tools.charts.structure_chart import PositionLines

    try:
        _, account = await user_account(deps, ctx, None)
        positions = await account.positions(symbol)
    except Exception:  # a chart without the position beats no chart
        return None
    if not positions:
        return None
    p = positions[0]
    targets = [float(p.take_profit)] if p.take_profit else []
    stop = float(p.stop_loss) if p.stop_loss else None
    return PositionLines(
        entry=float(p.entry_price),
        stop=stop,
        targets=targets,
        side=p.side.value,
        size=float(p.size),
        pnl=float(p.unrealised_pnl) if p.unrealised_pnl is not None else None,
        liquidation=float(p.liquidation_price) if p.liquidation_price else None,
    )
