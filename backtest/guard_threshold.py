"""The execution guards' minimum confidence on the calibrated scale: fitted on the earlier period, checked on the later.

The procedure (`python -m backtest.fit_calibration` runs it on the table it writes, or with `--keep-table` on the
table it is given, prints it and ships it in the table's `guard` section):

1. The governed decisions are the rules' acting decisions the minimum applies to: not HOLD (nothing to execute) and
   not exempt (a hard rule's close or protective stop, engine.execution.guards.exempt, is never held back by it).
2. Each gets the calibrated confidence the table gives its rule (the table's default for a rule it lacks).
3. On the earlier half of each symbol's bars (the split the table was fitted on), the decisions of each distinct
   confidence level are compared with HOLD and with EXIT on the same scenarios. A level with at least MIN_LEVEL
   decisions beats when its mean R is above both; a smaller level is not judged.
4. The minimum is the lowest judged level such that it and every judged level above it beat: auto mode never
   executes a level that lost R to holding or to exiting in the fit period. Where the top judged level does not
   beat, the minimum is 1.0 and auto mode executes only exempt decisions.
5. On the later half: the decisions at or above the minimum (what auto mode executes) and those below (what it leaves
   to a person), each with its R against HOLD and EXIT (clustered SE) and its accuracy.
"""

from __future__ import annotations

import math

import numpy as np

from backtest.calibration import split_by_time
from backtest.metrics import clustered_se
from engine.execution.guards import EXEMPT_ACTIONS
from engine.risk.calibration import UNFITTED_MIN_CONFIDENCE, ConfidenceTable, Edge, GuardThreshold, ThresholdLevel

MIN_LEVEL = 30  # fewer fit-period decisions at a level are too few to judge (as backtest.calibration.MIN_BIN)
PROCEDURE = (
    "lowest calibrated confidence whose governed decisions (acting, not exempt), and those of every level above it, "
    f"beat both HOLD and EXIT by mean R on the earlier half of each symbol's bars (levels of >= {MIN_LEVEL})"
)


def governed(actions: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """True for acting decisions the guards' minimum applies to (the backtest's form of guards.exempt)."""
    acting = actions != "HOLD"
    exempt = hard & np.isin(actions, list(EXEMPT_ACTIONS))
    return acting & ~exempt


def edge(
    m: np.ndarray, r: np.ndarray, hold_r: np.ndarray, exit_r: np.ndarray, hits: np.ndarray, cluster: np.ndarray
) -> Edge:
    """R against HOLD and EXIT and the accuracy of the rows in `m`."""
    n = int(m.sum())
    if n == 0:
        return Edge(n=0, vs_hold=None, vs_hold_se=None, vs_exit=None, vs_exit_se=None, accuracy=None)
    dh, de, cl = r[m] - hold_r[m], r[m] - exit_r[m], cluster[m]
    return Edge(
        n=n,
        vs_hold=float(dh.mean()),
        vs_hold_se=_finite(clustered_se(dh, cl)),
        vs_exit=float(de.mean()),
        vs_exit_se=_finite(clustered_se(de, cl)),
        accuracy=float(hits[m].mean()),
    )


def fit_threshold(
    table: ConfidenceTable,
    *,
    rules: list[str],
    actions: list[str],
    hard: np.ndarray,
    r: np.ndarray,
    hold_r: np.ndarray,
    exit_r: np.ndarray,
    hits: np.ndarray,
    symbols: np.ndarray,
    bars: np.ndarray,
    cluster: np.ndarray,
) -> GuardThreshold:
    """The guards' minimum for `table` (see the module's procedure), with its fit and check figures."""
    names = np.array(rules, dtype=object)
    confidence = np.array([table.confidence(str(rule)) for rule in names], dtype=np.float64)
    gov = governed(np.array(actions, dtype=object), np.asarray(hard, dtype=bool))
    early = split_by_time(symbols, bars)
    levels = []
    for level in sorted(set(confidence[gov & early].tolist())):
        m = gov & early & (confidence == level)
        e = edge(m, r, hold_r, exit_r, hits, cluster)
        judged = e.n >= MIN_LEVEL and e.vs_hold is not None and e.vs_exit is not None
        beats = bool(e.vs_hold > 0 and e.vs_exit > 0) if judged else None  # type: ignore[operator]
        levels.append(
            ThresholdLevel(**e.model_dump(), confidence=level, rules=sorted(set(names[m].tolist())), beats=beats)
        )
    minimum = UNFITTED_MIN_CONFIDENCE
    for lv in reversed([lv for lv in levels if lv.beats is not None]):
        if not lv.beats:
            break
        minimum = lv.confidence
    late, above = ~early, confidence >= minimum
    return GuardThreshold(
        min_confidence=minimum,
        procedure=PROCEDURE,
        levels=levels,
        fit_executed=edge(gov & early & above, r, hold_r, exit_r, hits, cluster),
        check_executed=edge(gov & late & above, r, hold_r, exit_r, hits, cluster),
        check_left=edge(gov & late & ~above, r, hold_r, exit_r, hits, cluster),
    )


def describe(g: GuardThreshold) -> list[str]:
    """The threshold and its figures as printed lines."""
    lines = [f"guards' minimum calibrated confidence: {g.min_confidence:.4f} ({g.procedure})", "fit period, per level:"]
    for lv in g.levels:
        verdict = {True: "beats", False: "does not beat", None: "too few to judge"}[lv.beats]
        lines.append(f"  {lv.confidence:.4f} {_edge_text(lv)} {verdict} ({', '.join(lv.rules)})")
    lines += [
        f"fit, executed (>= minimum): {_edge_text(g.fit_executed)}",
        f"check, executed (>= minimum): {_edge_text(g.check_executed)}",
        f"check, left to a person (< minimum): {_edge_text(g.check_left)}",
    ]
    return lines


def _edge_text(e: Edge) -> str:
    if e.n == 0:
        return "n=0"
    return (
        f"n={e.n} vs HOLD {e.vs_hold:+.3f} ± {_se(e.vs_hold_se)} R, vs EXIT {e.vs_exit:+.3f} ± {_se(e.vs_exit_se)} R, "
        f"accuracy {e.accuracy:.3f}"
    )


def _se(se: float | None) -> str:
    return "n/a" if se is None else f"{se:.3f}"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None
