"""Run the backtest: scenarios and rules decisions in worker processes, then every maker scored side by side."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backtest.config import BacktestConfig
from backtest.makers import Choices, baselines, rules_choices
from backtest.metrics import MakerScore, RuleScore, rule_attribution, score_maker
from backtest.outcomes import CAND_EXIT, CAND_HOLD, best_of, best_sets
from backtest.outcomes import Path as BarPath
from backtest.scenarios import ScenarioSet
from backtest.worker import ChunkResult, heap_frozen, run_chunk, worker_init

Progress = Callable[[str, int], None]  # (symbol, scenarios just finished)


@dataclass(slots=True)
class ScenarioRun:
    """Every scenario of a run (one seed or several pooled), its outcomes, rules decisions and (optionally) prompts."""

    config: BacktestConfig
    scenarios: ScenarioSet
    path: BarPath
    candidates: np.ndarray  # (N, K) R of the oracle's candidates
    available: np.ndarray
    best: np.ndarray  # (N, 4) classes with a candidate in the best set
    rules: Choices
    rules_rule: list[str]
    rules_raw_confidence: np.ndarray  # the rules' own confidence before calibration
    rules_hard: np.ndarray  # the decision is marked hard (see engine.execution.guards.exempt)
    fired_row: np.ndarray
    fired_rule: list[str]
    fired_r: np.ndarray
    prompts: list[str] | None
    drawn: int = 0  # scenarios drawn before the flat ones were dropped
    funding: dict[str, str] = field(default_factory=dict)  # per symbol: what was done about funding, in words

    @property
    def hold_r(self) -> np.ndarray:
        """R of keeping the plan unchanged."""
        return self.candidates[:, CAND_HOLD]

    @property
    def exit_r(self) -> np.ndarray:
        """R of closing everything at t."""
        return self.candidates[:, CAND_EXIT]

    @property
    def oracle_r(self) -> np.ndarray:
        """R of the best candidate in hindsight."""
        return best_of(self.candidates, self.available)


def work_items(cfg: BacktestConfig) -> list[tuple[str, range]]:
    """(symbol, groups) per work item, in the order results are assembled."""
    return [
        (symbol, range(g, min(g + cfg.chunk, cfg.groups)))
        for symbol in cfg.symbols
        for g in range(0, cfg.groups, cfg.chunk)
    ]


def worker_count(cfg: BacktestConfig) -> int:
    """Processes to use: the configured count, else one per symbol up to the CPUs available."""
    if cfg.workers:
        return cfg.workers
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(len(cfg.symbols), cpus))


def _chunks(
    data_dir: Path | str, cfg: BacktestConfig, with_prompts: bool, progress: Progress | None
) -> list[ChunkResult]:
    items = work_items(cfg)
    results: dict[tuple[str, int], ChunkResult] = {}

    def done(res: ChunkResult, symbol: str) -> None:
        results[(symbol, res.first_group)] = res
        if progress is not None:
            span = range(res.first_group, min(res.first_group + cfg.chunk, cfg.groups))
            progress(symbol, sum(max(0, min(cfg.group_size, cfg.scenarios - g * cfg.group_size)) for g in span))

    workers = min(worker_count(cfg), len(items))
    if workers <= 1:
        with heap_frozen():
            for symbol, groups in items:
                done(run_chunk(str(data_dir), cfg, symbol, groups, with_prompts), symbol)
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=worker_init) as pool:
            futures = {pool.submit(run_chunk, str(data_dir), cfg, s, g, with_prompts): s for s, g in items}
            for fut, symbol in futures.items():
                done(fut.result(), symbol)
    return [results[(s, g.start)] for s, g in items]


def run_scenarios(
    data_dir: Path | str, cfg: BacktestConfig, *, with_prompts: bool = False, progress: Progress | None = None
) -> ScenarioRun:
    """Generate every scenario of every seed (cfg.seeds, else cfg.seed), decide with the rules and simulate each
    decision as given; deterministic for the seeds."""
    seeds = cfg.seeds or [cfg.seed]
    ordered = [r for s in seeds for r in _chunks(data_dir, cfg.model_copy(update={"seed": s}), with_prompts, progress)]
    offsets = np.cumsum([0, *(len(r.scenarios) for r in ordered)])[:-1]
    cand = np.concatenate([r.candidates for r in ordered])
    avail = np.concatenate([r.available for r in ordered])
    actions = [a for r in ordered for a in r.rules_action]
    return ScenarioRun(
        config=cfg,
        scenarios=ScenarioSet.concat([r.scenarios for r in ordered]),
        path=BarPath.concat([r.path for r in ordered]),
        candidates=cand,
        available=avail,
        best=best_sets(cand, avail, cfg.tie_r),
        rules=rules_choices(
            actions,
            np.concatenate([r.rules_confidence for r in ordered]),
            np.concatenate([r.rules_r for r in ordered]),
        ),
        rules_rule=[x for r in ordered for x in r.rules_rule],
        rules_raw_confidence=np.concatenate([r.rules_raw_confidence for r in ordered]),
        rules_hard=np.concatenate([r.rules_hard for r in ordered]),
        fired_row=np.concatenate([r.fired_row + o for r, o in zip(ordered, offsets, strict=True)]),
        fired_rule=[x for r in ordered for x in r.fired_rule],
        fired_r=np.concatenate([r.fired_r for r in ordered]),
        prompts=[p for r in ordered for p in (r.prompts or [])] if with_prompts else None,
        drawn=sum(r.drawn for r in ordered),
        funding={r.symbol: r.funding for r in ordered},
    )


def all_makers(run: ScenarioRun, extra: Sequence[Choices] = ()) -> list[Choices]:
    """The baselines, the rules engine and any extra makers (e.g. a model), in that order."""
    return [*baselines(run.candidates, run.available, run.config.seed), run.rules, *extra]


def score_all(run: ScenarioRun, extra: Sequence[Choices] = ()) -> list[MakerScore]:
    """Scores of every maker (see all_makers)."""
    sc, cluster, oracle = run.scenarios, run.scenarios.cluster(), run.oracle_r
    return [
        score_maker(
            m.name, m.classes, m.r, run.hold_r, oracle, run.best, sc.symbol, cluster, run.config.tie_r, m.confidence
        )
        for m in all_makers(run, extra)
    ]


def attribution(run: ScenarioRun) -> list[RuleScore]:
    """Per-rule attribution of the run (every acting rule that fired, simulated as it decided)."""
    return rule_attribution(
        run.fired_row, run.fired_rule, run.fired_r, run.rules_rule, run.hold_r, run.exit_r, run.scenarios.cluster()
    )
