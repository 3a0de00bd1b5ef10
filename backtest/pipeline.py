"""The whole backtest in one call: scenarios → rules → optional model → scores → files."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backtest.calibration import check as check_calibration
from backtest.config import BacktestConfig
from backtest.makers import Choices, decision_terms
from backtest.metrics import correct
from backtest.model_maker import CACHE_FILE, PromptCache, model_choices
from backtest.outcomes import simulate
from backtest.report import BacktestResult, build_result, write_all
from backtest.runner import Progress, ScenarioRun, all_makers, attribution, run_scenarios, score_all
from engine.risk.decision import Decision
from inference import ModelClient
from inference.config import EndpointSettings


@dataclass(slots=True)
class BacktestOutput:
    """A finished run: the scenarios, the scored result and the files written."""

    run: ScenarioRun
    result: BacktestResult
    files: list[Path]


async def ask_model(
    run: ScenarioRun,
    settings: EndpointSettings,
    cache_dir: Path | None,
    concurrency: int = 8,
    progress: Callable[[int], None] | None = None,
) -> Choices:
    """Score a served model on the run's prompts (the cache lives in `cache_dir`)."""
    if run.prompts is None:
        raise ValueError("the run was made without prompts (with_prompts=False)")
    cache = PromptCache(cache_dir / CACHE_FILE) if cache_dir is not None else None

    def outcome(decisions: list[Decision | None]) -> np.ndarray:
        close, stop = decision_terms(decisions, run.scenarios.stop)
        return simulate(run.scenarios.position(), run.path, run.config, close, stop)

    try:
        async with ModelClient(settings) as client:
            return await model_choices(
                client,
                settings.risk_model,
                run.scenarios,
                run.prompts,
                cache,
                concurrency=concurrency,
                name=f"model:{settings.risk_model}",
                progress=progress,
                outcome=outcome,
            )
    finally:
        if cache is not None:
            cache.close()


def run_backtest(
    data_dir: Path | str,
    cfg: BacktestConfig,
    out_dir: Path | None = None,
    model: EndpointSettings | None = None,
    *,
    concurrency: int = 8,
    progress: Progress | None = None,
    model_progress: Callable[[int], None] | None = None,
) -> BacktestOutput:
    """Run, score every maker side by side and (with `out_dir`) write JSON, Markdown and PNG plots."""
    started = time.perf_counter()
    run = run_scenarios(data_dir, cfg, with_prompts=model is not None, progress=progress)
    extra = []
    if model is not None:
        extra.append(asyncio.run(ask_model(run, model, out_dir, concurrency, model_progress)))
    makers = all_makers(run, extra)
    scores = score_all(run, extra)
    hits = correct(run.rules.classes, run.rules.r, run.oracle_r, cfg.tie_r)
    cal = check_calibration(run.rules_rule, run.rules_raw_confidence, hits, run.scenarios.symbol, run.scenarios.bar)
    result = build_result(run, makers, scores, attribution(run), time.perf_counter() - started, cal)
    files: list[Path] = []
    if out_dir is not None:
        files = write_all(run, result, {m.name: m.r for m in makers}, out_dir)
    return BacktestOutput(run, result, files)
