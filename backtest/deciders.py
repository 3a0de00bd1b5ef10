"""Where the rules engine gains or loses against always-EXIT: its scenarios grouped by the rule that decided.

A per-rule attribution says what each rule's own decision is worth where it fired; this table says where the
engine's final decisions stand against closing everything, so the rows where holding costs R show up by name
("hold": no acting rule fired). Each row also gives what holding would have made there, and the same difference
on the earlier and the later half of every symbol's evaluation bars: a pocket that changes sign between the halves
is noise, not a pattern a rule can be built on.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from backtest.calibration import split_by_time
from backtest.metrics import Difference, difference


class DeciderScore(BaseModel):
    """The scenarios one rule decided: how many, and the engine's R minus always-EXIT's there."""

    rule: str
    n: int
    share: float = Field(description="Share of all scenarios this rule decided")
    vs_exit: Difference = Field(description="Mean R of the engine's decision minus always-EXIT's, clustered SE")
    vs_exit_sum: float = Field(description="Total R the engine made more than always-EXIT on these scenarios")
    hold_vs_exit: Difference = Field(description="Mean R of holding minus always-EXIT's on these scenarios")
    early: Difference = Field(description="vs_exit on the earlier half of each symbol's evaluation bars")
    late: Difference = Field(description="vs_exit on the later half")


def decider_scores(
    deciding_rule: list[str],
    rules_r: np.ndarray,
    hold_r: np.ndarray,
    exit_r: np.ndarray,
    cluster: np.ndarray,
    symbols: np.ndarray,
    bars: np.ndarray,
) -> list[DeciderScore]:
    """One row per deciding rule, the largest loss against always-EXIT (total R) first."""
    names = np.array(deciding_rule, dtype=object)
    gain = np.asarray(rules_r, dtype=np.float64) - np.asarray(exit_r, dtype=np.float64)
    hold_gain = np.asarray(hold_r, dtype=np.float64) - np.asarray(exit_r, dtype=np.float64)
    early = split_by_time(symbols, bars)

    def mean_se(x: np.ndarray, m: np.ndarray) -> Difference:
        return difference(x[m], np.zeros(int(m.sum())), cluster[m])

    out = []
    for rule in dict.fromkeys(deciding_rule):
        m = names == rule
        out.append(
            DeciderScore(
                rule=rule,
                n=int(m.sum()),
                share=float(m.mean()),
                vs_exit=mean_se(gain, m),
                vs_exit_sum=float(gain[m].sum()),
                hold_vs_exit=mean_se(hold_gain, m),
                early=mean_se(gain, m & early),
                late=mean_se(gain, m & ~early),
            )
        )
    return sorted(out, key=lambda s: s.vs_exit_sum)
