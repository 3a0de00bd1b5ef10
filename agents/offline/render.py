"""Answers of the offline model, rendered from tool results only (SPEC section 2 layout for trade questions)."""

from __future__ import annotations

from typing import Any

from tools.agent_tools.setup_score import alignment_line, mcf_line
from tools.numbers import money_text, plural, price_text, size_text

PREFIX = "[offline model] "
MIN_RR = 1.5  # a setup needs at least this reward:risk to its first target
NOT_CONNECTED = "The analyst model is not connected, so free-form questions get this data brief instead."
COMMANDS = """Commands (no language model needed):
  price <symbol>                       last price and 24h change
  levels <symbol> [15m|1h|4h|1d]       support/resistance with grade and touches
  chart <symbol> [timeframe]           chart with levels and your position
  analyze <symbol> [timeframe]         levels, setup, scenarios, sizing, verdict
  overview <symbol>                    funding, open interest, volatility
  positions | balance                  your account
  evaluate <symbol>                    risk engine check of an open position
  size <symbol> entry <p> stop <p> [risk 1%] [of 20k] [kelly win 55% payoff 2]   position size, Kelly
  monte carlo win rate 45% payoff 2 [risk 1%] [100 trades]   return and drawdown distribution
  close [half|25%] <symbol> [long|short]       propose a close (asks for confirmation)
  set stop <price> <symbol> | stop 2% below entry <symbol> | tp <symbol> at <price> | breakeven <symbol>"""

Data = dict[str, Any]


def p(x: float | None, symbol: str | None = None) -> str:
    """A price as shown to people: at the instrument's tick for `symbol`, else by magnitude (4+ digits)."""
    return price_text(x, symbol)


def sim(data: Data | None) -> str:
    """The data label: simulated, or replayed with its as-of time ("(replay, as of 2026-02-19 03:00 UTC)")."""
    if not data:
        return ""
    if data.get("simulated"):
        return " (simulated data)"
    if data.get("replay_as_of"):
        return f" (replay, as of {data['replay_as_of']})"
    return ""


def price(d: Data) -> str:
    """Last price answer."""
    change = f", {d['change_24h_pct']:+.2f}% in 24h" if d.get("change_24h_pct") is not None else ""
    return f"{d['symbol']}: {p(d['last'])}{change} (bid {p(d.get('bid'))}, ask {p(d.get('ask'))}){sim(d)}."


def _levels(items: list[Data]) -> str:
    if not items:
        return "none in range"
    return "; ".join(
        f"{p(lv['price'])} (grade {lv['grade']}, {plural(lv['touches'], 'touch')}{_state(lv)})" for lv in items
    )


def _state(lv: Data) -> str:
    return ", broken" if lv.get("state") == "broken" else ""


def levels(s: Data) -> str:
    """Structure answer: levels, trend, volume profile."""
    pr = s["profile"]
    lines = [
        f"{s['symbol']} {s['timeframe']} structure{sim(s)}: close {p(s['close'])}, ATR {p(s['atr'])}, "
        f"trend {s['trend']}, bias {s['bias']}.",
        f"- Resistance: {_levels(s['resistances'])}",
        f"- Support: {_levels(s['supports'])}",
        f"- Volume profile: POC {p(pr['poc'])}, value area {p(pr['val'])} - {p(pr['vah'])}.",
    ]
    for b in s.get("major_breaks") or []:
        lines.append(f"- Grade {b['grade']} level {p(b['price'])} broke {b['direction']}.")
    return "\n".join(lines)


def chart(c: Data) -> str:
    """Chart answer: the levels drawn on the picture that comes with it (its id is internal, never shown)."""
    drawn = " with your position" if c.get("position_drawn") else ""
    return (
        f"Chart of {c['symbol']} {c['timeframe']}{drawn}{sim(c)}:\n"
        f"- Resistance: {_levels(c['resistances'])}\n- Support: {_levels(c['supports'])}"
    )


def positions(d: Data) -> str:
    """Open positions answer."""
    rows = d.get("positions") or []
    head = f"Account {d['account']} ({d['exchange']}){sim(d)}:"
    if not rows:
        return head + " no open positions."
    lines = [head]
    for r in rows:
        lines.append(position_line(r))
    return "\n".join(lines)


def position_line(r: Data) -> str:
    """One open position: size, entry and mark at the instrument's precision, PnL in USDT, stop, liquidation."""
    sym = r["symbol"]
    extra = f", stop {p(r['stop'], sym)}" if r.get("stop") else ", no stop"
    if r.get("liquidation"):
        extra += f", liquidation {p(r['liquidation'], sym)}"
    pct = f" ({r['pnl_pct']:+.2f}%)" if r.get("pnl_pct") is not None else ""
    return (
        f"- {sym} {r['side']} {size_text(r['size'], symbol=sym)} @ {p(r['entry'], sym)}, mark {p(r['mark'], sym)}, "
        f"PnL {money_text(r['unrealised_pnl'], 'USDT', signed=True)}{pct}, {r['leverage']:g}x{extra}"
    )


def portfolio(pos: Data, bal: Data) -> str:
    """How the portfolio is doing: equity, open PnL, each position with its PnL and the risk to its stop."""
    cur = bal.get("currency", "USDT")
    rows = pos.get("positions") or []
    lines = [
        f"Portfolio on {pos['account']} ({pos['exchange']}){sim(pos)}: equity {money_text(bal['total'], cur)}, "
        f"free {money_text(bal['free'])}, open PnL {money_text(bal['unrealised_pnl'], cur, signed=True)}, "
        f"{plural(len(rows), 'open position')}."
    ]
    for r in rows:
        line = position_line(r)
        if r.get("stop") is None:
            line += "; risk: no stop, the loss is open down to liquidation"
        elif r.get("risk_to_stop_usd") is not None:
            share = f" ({100 * r['risk_to_stop_usd'] / bal['total']:.2f}% of equity)" if bal.get("total") else ""
            line += f"; at risk to the stop {money_text(r['risk_to_stop_usd'], cur)}{share}"
        lines.append(line)
    if rows and pos.get("risk_to_stops_usd") is not None:
        unstopped = sum(1 for r in rows if r.get("stop") is None)
        tail = f"; {plural(unstopped, 'position')} without a stop" if unstopped else ""
        share = f" ({100 * pos['risk_to_stops_usd'] / bal['total']:.2f}% of equity)" if bal.get("total") else ""
        lines.append(f"Total at risk to the stops: {money_text(pos['risk_to_stops_usd'], cur)}{share}{tail}.")
    return "\n".join(lines)


def cannot_map_with_data(s: Data | None, o: Data | None) -> str:
    """A question about a symbol the offline model has no tool for: its data brief and one line on what to ask."""
    return "\n".join(
        x
        for x in (
            NOT_CONNECTED,
            brief(s, o),
            "Ask e.g. analyze <symbol> 4h, levels <symbol>, or /help for the commands.",
        )
        if x
    )


def balance(d: Data) -> str:
    """Balance answer."""
    return (
        f"Account {d['account']} ({d['exchange']}){sim(d)}: total {money_text(d['total'], d['currency'])}, "
        f"free {money_text(d['free'])}, used {money_text(d['used'])}, "
        f"unrealised PnL {money_text(d['unrealised_pnl'], d['currency'], signed=True)}."
    )


def size(d: Data) -> str:
    """Pre-trade calculator answer: each input with where it came from (typed, your settings, market, ...)."""
    cap = " (capped by max leverage)" if d.get("capped") else ""
    lines = [
        f"Position size{' for ' + d['symbol'] if d.get('symbol') else ''}: "
        f"{size_text(d['units'], symbol=d.get('symbol'))} units, "
        f"{d['notional_usd']:,.2f} USD notional{cap}.",
        f"- Capital {d['capital']:,.2f} ({d['capital_source']}), risk {d['risk_pct']:g}% "
        f"({d.get('risk_source', 'given')}) = {d['risk_amount']:,.2f} USD",
        f"- Entry {p(d['entry'])} ({d.get('entry_source', 'given')}), stop {p(d['stop'])} "
        f"({d.get('stop_source', 'given')}, {d['stop_distance_pct']:.2f}% away), "
        f"leverage needed {d['leverage_needed']:g}x",
    ]
    if d.get("kelly_fraction") is not None:
        lines.append(_kelly(d))
    return "\n".join(lines)


def _kelly(d: Data) -> str:
    if d["kelly_fraction"] <= 0:
        return (
            f"- Kelly: win rate {d['win_rate_pct']:g}% and payoff {d['payoff']:g} have no edge "
            f"(Kelly fraction {d['kelly_fraction']:g}): Kelly says do not take this trade."
        )
    return (
        f"- Kelly: win rate {d['win_rate_pct']:g}%, payoff {d['payoff']:g}: full Kelly risks "
        f"{d['kelly_risk_pct']:g}% per trade, half Kelly {d['half_kelly_risk_pct']:g}%."
    )


def monte_carlo(d: Data) -> str:
    """Monte Carlo answer: return and drawdown percentiles over the simulated paths."""
    r, dd, over = d["return_pct"], d["max_drawdown_pct"], d["prob_drawdown_over"]
    return "\n".join(
        [
            f"Monte Carlo of {d['trades']:,} trades x {d['paths']:,} paths at {d['risk_pct']:g}% risk per trade "
            f"({d['risk_source']}), win rate {d['win_rate_pct']:g}%, payoff {d['payoff']:g} "
            f"(Kelly fraction {d['kelly_fraction']:g}):",
            f"- Return: median {r['p50']:+.1f}%, 5th percentile {r['p5']:+.1f}%, 95th percentile {r['p95']:+.1f}%; "
            f"mean {d['mean_return_pct']:+.1f}%; {100 * d['prob_loss']:.1f}% of paths end in loss",
            f"- Maximum drawdown: median {dd['p50']:.1f}%, 95th percentile {dd['p95']:.1f}%; "
            f"{100 * over['20%']:.1f}% of paths draw down more than 20%, {100 * over['50%']:.1f}% more than 50%",
        ]
    )


def overview(o: Data) -> str:
    """Market overview answer."""
    v = o.get("volatility") or {}
    parts = [f"{o['symbol']}{sim(o)}: {p(o['last'])}"]
    if o.get("change_24h_pct") is not None:
        parts[0] += f" ({o['change_24h_pct']:+.2f}% 24h)"
    if o.get("funding_pct_per_8h") is not None:
        parts.append(f"funding {o['funding_pct_per_8h']:+.4f}% per 8h")
    if o.get("open_interest_usd") is not None:
        parts.append(f"open interest {o['open_interest_usd']:,.0f} USD ({o['open_interest_change_pct']:+.2f}% 4h)")
    if v:
        parts.append(f"volatility {v['regime']} (ATR {v['atr_pct']:.2f}%, percentile {v['percentile']:g})")
    if o.get("book_imbalance") is not None:
        parts.append(f"book imbalance {o['book_imbalance']:+.3f}")
    if o.get("long_short_ratio") is not None:
        parts.append(f"long/short ratio {o['long_short_ratio']:.3f} (accounts long per account short)")
    return "; ".join(parts) + "."


def evaluation(e: Data) -> str:
    """Risk engine decision answer."""
    pos = e["position"]
    lines = [
        f"{pos['symbol']} {pos['side']} {size_text(pos['size'], symbol=pos['symbol'])} "
        f"@ {p(pos['entry'], pos['symbol'])}, "
        f"mark {p(pos['mark'], pos['symbol'])}: "
        f"**{e['action']}** (confidence {100 * e['confidence']:.0f}%).",
        e["reasoning"],
    ]
    lines += [f"- Warning: {w}" for w in e.get("warnings") or []]
    return "\n".join(lines)


def _plan_line(name: str, plan: Data | None) -> str:
    if not plan:
        return f"- {name}: no plan (not enough structure)."
    t = plan["targets"]
    t2 = f", T2 {p(t[1]['price'])}" if len(t) > 1 else ""
    line = (
        f"- {name}: entry {p(plan['entry'])}, T1 {p(t[0]['price'])}{t2}, stop {p(plan['stop'])} "
        f"({plan['stop_source']}), R:R {plan['rr_t1']:.2f} to T1"
    )
    if plan.get("rejected"):
        line += f"; rejected: {'; '.join(plan.get('reasons') or ['bad setup'])}"
    return line


def _now(s: Data) -> str:
    """Where price is: the live price plans start from, beside the last close when they differ."""
    if s.get("price") is None:
        return f"close {p(s['close'])}"
    return f"price {p(s['price'])} (last close {p(s['close'])})"


def favoured_side(s: Data, wanted: str | None) -> str:
    """The side to size: the one asked about, else the structural bias (long when neutral)."""
    return wanted or ("short" if s["bias"] == "bearish" else "long")


def analysis(s: Data, o: Data | None, z: Data | None, wanted: str | None) -> str:
    """The full trade-question layout: levels, setup, scenarios, sizing, verdict."""
    side = favoured_side(s, wanted)
    plan = (s.get("plans") or {}).get(side)
    res, sup = s["resistances"], s["supports"]
    near_r = next((lv for lv in res if lv["state"] == "holding"), None)
    near_s = next((lv for lv in sup if lv["state"] == "holding"), None)
    atr = s["atr"] or 1.0
    near = [lv for lv in (near_r, near_s) if lv and abs(lv["price"] - s["close"]) <= 0.5 * atr]
    phase = "break" if s.get("major_breaks") else "test" if near else "range (no level within 0.5 ATR)"
    trigger = near_r if side == "long" else near_s
    rr = plan["rr_t1"] if plan else 0.0
    # The structure engine's own rejections (stop beyond the cap, T1 under 1R, no level to stop behind) first.
    reasons = list(plan.get("reasons") or []) if plan else ["no plan could be built from the structure"]
    if rr < MIN_RR and not any("T1" in r for r in reasons):
        # Written as a ratio ("1.5:1"): the grounding check reads it as a rule, not a price to find in the data.
        reasons.append(f"R:R to T1 is {rr:.2f}, below the {MIN_RR:g}:1 minimum")
    if plan and plan["stop_source"] != "structure" and not plan.get("rejected"):
        reasons.append("the stop is not behind a structure level")
    if (s["bias"] == "bullish" and side == "short") or (s["bias"] == "bearish" and side == "long"):
        reasons.append(f"the {s['timeframe']} bias is {s['bias']}")
    confidence = 50 + (10 if s["bias"] != "neutral" else 0) + (10 if rr >= 2 else 0) - 10 * len(reasons)
    confidence = max(20, min(80, confidence))
    out = [
        f"{s['symbol']} {s['timeframe']} analysis{sim(s)}.",
        "**1. Key structural levels**",
        f"- Resistance: {_levels(res)}",
        f"- Support: {_levels(sup)}",
        f"- Volume profile: POC {p(s['profile']['poc'])}, value area {p(s['profile']['val'])} - "
        f"{p(s['profile']['vah'])}",
        "**2. Entry setup**",
        f"- Phase: {phase}; {_now(s)}, ATR {p(s['atr'])}.",
    ]
    if trigger:
        verb = "above" if side == "long" else "below"
        out.append(
            f"- Trigger ({side}): a {s['timeframe']} close {verb} {p(trigger['price'])}; confirmation: a retest "
            "that holds, with volume above average."
        )
    if s.get("alignment"):
        out.append(f"- {alignment_line(s['alignment'])}")
    for name in ("long", "short"):
        if (s.get("mcf") or {}).get(name):
            out.append(f"- {mcf_line(name, s['mcf'][name])}")
    out += [
        "**3. Scenarios**",
        _plan_line("Bullish", s["plans"].get("long")),
        _plan_line("Bearish", s["plans"].get("short")),
    ]
    out.append("**4. Position sizing**")
    if z:
        out.append(
            f"- Capital {z['capital']:,.2f}, risk {z['risk_pct']:g}% = {z['risk_amount']:,.2f} USD; "
            f"{side} size {size_text(z['units'])} units = {z['notional_usd']:,.2f} USD (stop {p(z['stop'])})."
        )
    else:
        out.append("- Not sized: no valid plan.")
    bias = s["bias"]
    if o:
        out.append(f"- Context: {overview(o)}")
    out.append("**5. Verdict**")
    if reasons:
        out.append(f"- Bias {bias}, confidence {confidence}%. Setup rejected: {'; '.join(reasons)}.")
        out.append("- Action: no trade now; wait for a test of a graded level with a better R:R.")
    else:
        out.append(f"- Bias {bias}, confidence {confidence}%. Action: {side} on the trigger above, stop as planned.")
    return "\n".join(out)


def brief(s: Data | None, o: Data | None) -> str:
    """A data brief of a symbol for questions the offline model cannot map."""
    parts = []
    if o:
        parts.append(overview(o))
    if s:
        parts.append(levels(s))
    return "\n".join(parts)
