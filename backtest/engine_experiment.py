"""Measure proposed rules-engine changes on the backtest without editing engine/ (monkeypatched, one process).

.venv/bin/python -m backtest.engine_experiment --data-dir ../shared/data/ohlcv
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from backtest.config import BacktestConfig
from backtest.runner import run_scenarios, score_all
from engine.risk import evaluate as evaluate_mod
from engine.risk import rules
from engine.risk.context import RiskContext
from engine.risk.decision import Decision

ADVERSE_CUT_ATR = 0.5


def structure_against(ctx: RiskContext) -> Decision | None:
    """Proposed: price 0.5+ ATR against entry while the structure bias points against the position: reduce half."""
    s = ctx.market.structure
    if s is None or ctx.adverse_atr < ADVERSE_CUT_ATR or s.bias != -ctx.d:
        return None
    return Decision(
        action="REDUCE_SIZE",
        confidence=0.65,
        close_pct=50.0,
        rule="structure_against",
        reasoning=f"Price is {ctx.adverse_atr:.2f} ATR against entry and the structure bias is against the position.",
    )


def adverse_cut(ctx: RiskContext) -> Decision | None:
    """Variant without the structure condition (for comparison)."""
    if ctx.adverse_atr < ADVERSE_CUT_ATR:
        return None
    return Decision(action="REDUCE_SIZE", confidence=0.6, close_pct=50.0, rule="adverse_cut", reasoning="against")


def lock_profit(ctx: RiskContext) -> Decision | None:
    """Proposed: 0.5R+ in profit before T1 with no structure trail in place: bank half."""
    r = ctx.r_multiple
    if r is None or r < 0.5 or ctx.position.targets_hit > 0:
        return None
    return Decision(
        action="TP_PARTIAL", confidence=0.6, close_pct=50.0, rule="lock_profit", reasoning=f"{r:.2f}R before T1"
    )


def guard_trail_only(ctx: RiskContext) -> Decision | None:
    """Proposed: the guarding line keeps trailing the stop, but losing it no longer exits (the stop does that)."""
    d = rules.guarding_line(ctx)
    return None if d is None or d.action == "EXIT_FULL" else d


def _replace(old: Callable[[RiskContext], Decision | None], new: Callable[[RiskContext], Decision | None]) -> tuple:
    return tuple(new if r is old else r for r in rules.HIERARCHY)


VARIANTS: dict[str, tuple[Callable[[RiskContext], Decision | None], ...]] = {
    "baseline": (),
    "structure_against": (structure_against,),
    "adverse_cut": (adverse_cut,),
    "lock_profit": (lock_profit,),
    "structure_against+lock_profit": (structure_against, lock_profit),
}
# Variants that replace a rule of the hierarchy instead of adding one.
REPLACED: dict[str, tuple[tuple[Callable[[RiskContext], Decision | None], ...], tuple]] = {
    "guard_trail_only": ((), _replace(rules.guarding_line, guard_trail_only)),
    "guard_trail_only+adverse_cut": ((adverse_cut,), _replace(rules.guarding_line, guard_trail_only)),
}


def main() -> None:
    """Score each variant of the hierarchy (extra rules go just before time_exit)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="../shared/data/ohlcv")
    ap.add_argument("--scenarios", type=int, default=2000)
    args = ap.parse_args()
    cfg = BacktestConfig(scenarios=args.scenarios, workers=1)
    original = rules.HIERARCHY
    plans = {k: (v, original) for k, v in VARIANTS.items()} | REPLACED
    for name, (extra, base) in plans.items():
        evaluate_mod.HIERARCHY = (*base[:-1], *extra, base[-1])  # type: ignore[attr-defined]
        run = run_scenarios(args.data_dir, cfg)
        scores = {s.name: s for s in score_all(run)}
        per = {k: v.per_symbol for k, v in scores.items()}
        line = "  ".join(
            f"{sym.split('/')[0]} {per['rules'][sym].mean_r:+.3f}"
            f" (hold {per['always-HOLD'][sym].mean_r:+.3f}, rnd {per['random'][sym].mean_r:+.3f})"
            for sym in per["rules"]
        )
        r = scores["rules"].overall
        print(f"{name:32s} all {r.mean_r:+.3f} cap {r.capture or 0:.3f} acc {r.accuracy:.3f} | {line}")
    evaluate_mod.HIERARCHY = original  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
