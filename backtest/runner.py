"""Run the backtest: scenarios and rules decisions in worker processes, then every maker scored side by side."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backtest.config import BacktestConfig
from backtest.makers import Choices, baselines, rules_choices
from backtest.metrics import MakerScore, score_maker
from backtest.outcomes import best_sets
from backtest.scenarios import ScenarioSet
from backtest.worker import ChunkResult, run_chunk

Progress = Callable[[str, int], None]  # (symbol, scenarios just finished)


@dataclass(slots=True)
class ScenarioRun:
    """Every scenario of a run, its outcomes (R per class), best sets, rules decisions and (optionally) prompts."""

    config: BacktestConfig
    scenarios: ScenarioSet
    outcomes: np.ndarray
    best: np.ndarray
    rules: Choices
    rules_rule: list[str]
    prompts: list[str] | None


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


def run_scenarios(
    data_dir: Path | str, cfg: BacktestConfig, *, with_prompts: bool = False, progress: Progress | None = None
) -> ScenarioRun:
    """Generate every scenario, decide with the rules and simulate outcomes; deterministic for cfg.seed."""
    items = work_items(cfg)
    results: dict[tuple[str, int], ChunkResult] = {}

    def done(res: ChunkResult, symbol: str) -> None:
        results[(symbol, res.first_group)] = res
        if progress is not None:
            progress(symbol, len(res.scenarios))

    workers = min(worker_count(cfg), len(items))
    if workers <= 1:
        for symbol, groups in items:
            done(run_chunk(str(data_dir), cfg, symbol, groups, with_prompts), symbol)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_chunk, str(data_dir), cfg, s, g, with_prompts): s for s, g in items}
            for fut, symbol in futures.items():
                done(fut.result(), symbol)
    ordered = [results[(s, g.start)] for s, g in items]
    outcomes = np.concatenate([r.outcomes for r in ordered])
    actions = [a for r in ordered for a in r.rules_action]
    prompts = [p for r in ordered for p in (r.prompts or [])] if with_prompts else None
    return ScenarioRun(
        config=cfg,
        scenarios=ScenarioSet.concat([r.scenarios for r in ordered]),
        outcomes=outcomes,
        best=best_sets(outcomes, cfg.tie_r),
        rules=rules_choices(actions, np.concatenate([r.rules_confidence for r in ordered])),
        rules_rule=[x for r in ordered for x in r.rules_rule],
        prompts=prompts,
    )


def score_all(run: ScenarioRun, extra: list[Choices] = ()) -> list[MakerScore]:  # type: ignore[assignment]
    """Scores of the baselines, the rules engine and any extra makers (e.g. a model), in that order."""
    makers = [*baselines(run.outcomes, run.config.seed), run.rules, *extra]
    return [score_maker(m.name, m.classes, run.outcomes, run.best, run.scenarios.symbol, m.confidence) for m in makers]
