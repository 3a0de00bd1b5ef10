"""Run the rules in priority order: hard rules first, then the exit hierarchy; HOLD when nothing applies."""

from __future__ import annotations

from engine.risk.calibration import calibrate, shipped_table
from engine.risk.context import RiskContext
from engine.risk.decision import Decision
from engine.risk.rules import HARD_RULES, HIERARCHY, _fmt

TIMEFRAME_MINUTES = {"15m": 15, "1h": 60, "4h": 240, "1d": 1440}


def triggered(ctx: RiskContext) -> list[Decision]:
    """Every rule that fires, in priority order (for explanations and tests)."""
    return [d for rule in (*HARD_RULES, *HIERARCHY) if (d := rule(ctx)) is not None]


def evaluate(ctx: RiskContext) -> Decision:
    """The rules' decision for one position: the most protective rule that fires wins (priority breaks ties).

    Taking the first rule in priority order let a softer hard rule hide a stronger exit (a losing short without a
    stop got REDUCE 33% at 5x but EXIT at 3x and 10x). With the maximum, more leverage, which only adds or
    strengthens rules, can never soften the decision. When a hard rule fired, the winner is marked hard: it is at
    least as protective as that rule, so no model opinion may soften it either.
    """
    return decide(ctx, triggered(ctx))


def decide(ctx: RiskContext, fired: list[Decision]) -> Decision:
    """evaluate() from the rules that fired (`triggered(ctx)`), for callers that also keep every rule's answer."""
    warnings: list[str] = []
    for decision in fired:
        warnings.extend(w for w in decision.warnings if w not in warnings)
    acting = [d for d in fired if d.action != "HOLD"]  # a warning-only rule (e.g. no stop at 3x) decides nothing
    if not acting:
        return _finish(ctx, _hold(ctx, warnings))
    best = most_protective(acting)
    hard = any(d.hard for d in acting)
    update: dict[str, object] = {"warnings": warnings, "hard": hard}
    if best.next_check_minutes is None:
        update["next_check_minutes"] = next_check(ctx, best.action)  # in the one copy, not a second one
    return _finish(ctx, best.model_copy(update=update))


def most_protective(decisions: list[Decision]) -> Decision:
    """The most protective of `decisions` (see Decision.protection); the earliest, i.e. highest priority, on a tie."""
    return max(enumerate(decisions), key=lambda pair: (pair[1].protection, -pair[0]))[1]


def _hold(ctx: RiskContext, warnings: list[str]) -> Decision:
    pos, m = ctx.position, ctx.market
    parts = [f"Price {_fmt(m.price)}, entry {_fmt(pos.entry)}"]
    if pos.stop is not None:
        parts.append(f"stop {_fmt(pos.stop)} is {abs(m.price - pos.stop) / m.atr:.2f} ATR away")
    if pos.targets_hit < len(pos.targets):
        target = pos.targets[pos.targets_hit]
        parts.append(
            f"next target T{pos.targets_hit + 1} {_fmt(target)} is {abs(target - m.price) / m.atr:.2f} ATR away"
        )
    if (r := ctx.r_multiple) is not None:
        parts.append(f"at {r:+.2f}R")
    return Decision(
        action="HOLD",
        confidence=0.6,
        rule="hold",
        reasoning="Structure holds and no exit rule fires: " + "; ".join(parts) + ".",
        warnings=warnings,
        next_check_minutes=next_check(ctx, "HOLD"),
    )


def next_check(ctx: RiskContext, action: str) -> int:
    """Minutes to the next look: 1 for an emergency, a quarter bar on HOLD, a twelfth of a bar after acting."""
    bar = TIMEFRAME_MINUTES.get(ctx.market.timeframe, 60)
    return 1 if action == "EMERGENCY_EXIT" else max(1, bar // 4 if action == "HOLD" else bar // 12)


def _finish(ctx: RiskContext, decision: Decision) -> Decision:
    # The reported confidence is the measured one: how often this rule's decision was among the best.
    decision = calibrate(decision, shipped_table() if ctx.params.calibrated_confidence else None)
    if decision.next_check_minutes is not None:
        return decision
    return decision.model_copy(update={"next_check_minutes": next_check(ctx, decision.action)})
