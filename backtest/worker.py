"""One unit of work: a symbol's range of scenario groups → scenarios, rules decisions, prompts, outcomes."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from backtest.config import BacktestConfig
from backtest.context import ReplayContexts, opened_at, risk_context
from backtest.makers import decision_terms
from backtest.outcomes import CANDIDATES, candidate_terms, simulate_rows
from backtest.outcomes import Path as BarPath
from backtest.scenarios import ScenarioSet, generate_counted
from engine.risk.context import MarketView, RiskContext, RiskPosition
from engine.risk.evaluate import decide, triggered
from engine.risk.opinion import build_risk_context
from tools.market.replay import ReplayMarketData


@dataclass(slots=True)
class ChunkResult:
    """Everything computed for one chunk; rows align with `scenarios`."""

    symbol: str
    first_group: int
    scenarios: ScenarioSet
    path: BarPath  # bars t+1 .. t+H of every row (a model maker is simulated on them later)
    candidates: np.ndarray  # (N, K) R of every oracle candidate
    available: np.ndarray  # (N, K)
    rules_action: list[str]
    rules_confidence: np.ndarray  # the calibrated confidence the engine reports (the rule's own where none)
    rules_raw_confidence: np.ndarray  # the rule's own figure (what the calibration is checked against)
    rules_rule: list[str]
    rules_hard: np.ndarray  # the decision is marked hard (a hard rule fired): a closing one is exempt from the guards
    rules_r: np.ndarray  # R of the rules' decision, simulated as given
    fired_row: np.ndarray  # every acting rule that fired: its row, name and R as given (attribution)
    fired_rule: list[str]
    fired_r: np.ndarray
    prompts: list[str] | None  # the model's user turn, when a model maker is scored
    drawn: int = 0  # rows drawn before the flat ones were dropped
    funding: str = ""  # what was done about funding for the symbol, in words


def worker_init() -> None:
    """Start of a worker process: what it inherited (modules, schemas, the parent's objects, ~170,000 of them) goes to
    the collector's permanent generation. Nothing there is garbage a worker makes, but every full collection would
    walk it again (3-4% of a worker's CPU); reference counting still frees any of it that is dropped."""
    gc.freeze()


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """A run in this process with what existed before it frozen (full collections skip it), unfrozen afterwards;
    left alone when something in the process froze objects already."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@functools.lru_cache(maxsize=16)
def _contexts(data_dir: str, symbol: str, timeframe: str, lookback: int) -> ReplayContexts:
    # Per process: the candle files are parsed once and reused by every chunk of the symbol.
    return ReplayContexts(ReplayMarketData(data_dir), symbol, timeframe, lookback)


def contexts_for(data_dir: Path | str, symbol: str, cfg: BacktestConfig) -> ReplayContexts:
    """The (process-cached) context builder of one symbol."""
    return _contexts(str(data_dir), symbol, cfg.timeframe, cfg.lookback)


def position_at(sc: ScenarioSet, i: int, ctx: ReplayContexts) -> RiskPosition:
    """Scenario row `i` as the engine's position at the close of its evaluation bar."""
    return positions(sc.take(np.array([i])), ctx)[0]


def positions(sc: ScenarioSet, ctx: ReplayContexts) -> list[RiskPosition]:
    """Every row as the engine's position at the close of its evaluation bar (columns read as Python values once;
    one entry time per entry bar)."""
    cols = (sc.d, sc.entry, sc.remaining, sc.leverage, sc.stop, sc.initial_stop, sc.t1, sc.t2, sc.t3, sc.targets_hit)
    times: dict[int, datetime] = {}
    out = []
    for d, entry, size, lev, stop, initial, t1, t2, t3, hit, bar in zip(
        *(c.tolist() for c in cols), sc.entry_bar.tolist(), strict=True
    ):
        at = times.get(bar)
        if at is None:
            at = times[bar] = opened_at(ctx, bar)
        out.append(
            RiskPosition(
                symbol=ctx.symbol,
                side="long" if d > 0 else "short",
                entry=float(entry),
                size=float(size),
                leverage=float(lev),
                stop=None if math.isnan(stop) else float(stop),
                initial_stop=None if math.isnan(initial) else float(initial),
                targets=[float(t1), float(t2), float(t3)],
                targets_hit=int(hit),
                opened_at=at,
            )
        )
    return out


def decision_contexts(sc: ScenarioSet, ctx: ReplayContexts) -> list[RiskContext]:
    """The RiskContext of every scenario (one structure report per evaluation bar, shared)."""
    views: dict[int, MarketView] = {}
    out = []
    for bar, position in zip(sc.bar.tolist(), positions(sc, ctx), strict=True):
        view = views.get(bar)
        if view is None:
            view = views[bar] = ctx.market_view(bar)
        out.append(risk_context(position, view))
    return out


def run_chunk(data_dir: str, cfg: BacktestConfig, symbol: str, groups: range, with_prompts: bool) -> ChunkResult:
    """Generate, decide (rules), render prompts if asked, and simulate every decision as given."""
    ctx = contexts_for(data_dir, symbol, cfg)
    sc, drawn = generate_counted(ctx, cfg, groups)
    contexts = decision_contexts(sc, ctx)
    every = [triggered(c) for c in contexts]  # each rule runs once per scenario: the decision and attribution share it
    decisions = [decide(c, f) for c, f in zip(contexts, every, strict=True)]
    fired = [(i, d) for i, f in enumerate(every) for d in f if d.action != "HOLD"]
    prompts = [build_risk_context(c) for c in contexts] if with_prompts else None
    f = ctx.full
    path = BarPath.take(f.open, f.high, f.low, f.close, sc.bar + 1, cfg.horizon, ctx.funding if cfg.funding else None)
    pos = sc.position()
    n, k = len(sc), len(CANDIDATES)
    cand_close, cand_stop, avail = candidate_terms(pos, cfg)
    close, stop = decision_terms(decisions, sc.stop)
    rows = np.array([i for i, _ in fired], dtype=np.int64)
    fc, fs = decision_terms([d for _, d in fired], sc.stop[rows])
    # The oracle's candidates, the rules' decisions and every fired rule's own decision: one walk of the path.
    cand_r, rules_r, fired_r = simulate_rows(
        pos,
        path,
        cfg,
        [(np.tile(np.arange(n), k), cand_close, cand_stop), (np.arange(n), close, stop), (rows, fc, fs)],
    )
    cand = cand_r.reshape(k, n).T
    ctx.forget()
    return ChunkResult(
        symbol=ctx.symbol,
        first_group=groups.start,
        scenarios=sc,
        path=path,
        candidates=cand,
        available=avail,
        rules_action=[d.action for d in decisions],
        rules_confidence=np.array(
            [d.confidence if d.calibrated_confidence is None else d.calibrated_confidence for d in decisions]
        ),
        rules_raw_confidence=np.array([d.confidence for d in decisions]),
        rules_rule=[d.rule for d in decisions],
        rules_hard=np.array([d.hard for d in decisions], dtype=bool),
        rules_r=rules_r,
        fired_row=rows,
        fired_rule=[d.rule for _, d in fired],
        fired_r=fired_r,
        prompts=prompts,
        drawn=drawn,
        funding=ctx.funding_note(cfg.funding),
    )
