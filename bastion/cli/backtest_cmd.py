"""`bastion backtest --symbols BTC,ETH,SOL --tf 1h --scenarios 2000 --seeds 0,1,2 --data-dir DIR [--model-url URL]`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from bastion.settings import ModelSettings

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)
DEFAULT_DATA = Path("../shared/data/ohlcv")


def register(app: typer.Typer) -> None:
    """Add the `backtest` command."""

    @app.command("backtest")
    def backtest(
        symbols: str = typer.Option("BTC,ETH,SOL", "--symbols", help="Comma-separated symbols."),
        tf: str = typer.Option("1h", "--tf", help="Evaluation timeframe."),
        scenarios: int = typer.Option(5000, "--scenarios", min=1, help="Scenario rows drawn per symbol."),
        data_dir: Path = typer.Option(
            Path(os.environ.get("BASTION_DATA_DIR", DEFAULT_DATA)), "--data-dir", help="Folder of candle files."
        ),
        out: Path = typer.Option(Path("backtest-results"), "--out", help="Folder for JSON, Markdown and PNG files."),
        seed: int = typer.Option(0, "--seed", help="Scenario seed (same seed, same scenarios)."),
        seeds: str = typer.Option("", "--seeds", help="Several seeds pooled, e.g. 0,1,2 (overrides --seed)."),
        horizon: int = typer.Option(48, "--horizon", min=1, help="Bars simulated after each decision."),
        fee: float = typer.Option(0.0005, "--fee", min=0.0, help="Taker fee per side (0.0005 = 0.05%)."),
        slippage: float = typer.Option(
            0.0002, "--slippage", min=0.0, help="Slippage of every market fill (0.0002 = 0.02%)."
        ),
        funding: bool = typer.Option(
            True, "--funding/--no-funding", help="Charge funding where a perp's funding-rate file is in the data dir."
        ),
        workers: int = typer.Option(0, "--workers", min=0, help="Worker processes (0 = automatic)."),
        model_url: str | None = typer.Option(None, "--model-url", help="OpenAI-compatible endpoint to score."),
        model_name: str = typer.Option("bastion", "--model-name", help="Served model name for risk decisions."),
        model_key: str = typer.Option("", "--model-key", envvar="BASTION_MODEL__API_KEY", help="Endpoint API key."),
        concurrency: int = typer.Option(8, "--concurrency", min=1, help="Concurrent model requests."),
        model_timeout: float = typer.Option(60.0, "--model-timeout", min=0.1, help="Seconds per model request."),
    ) -> None:
        """Score exit decisions (rules engine, baselines, optionally a served model) on real candles."""
        from backtest.config import BacktestConfig
        from backtest.pipeline import run_backtest
        from backtest.report import markdown

        try:
            seeds_list = [int(x) for x in seeds.split(",") if x.strip()]
            cfg = BacktestConfig(
                symbols=[s.strip() for s in symbols.split(",") if s.strip()],
                timeframe=tf,
                scenarios=scenarios,
                seed=seeds_list[0] if seeds_list else seed,
                seeds=seeds_list or None,
                horizon=horizon,
                fee=fee,
                slippage=slippage,
                funding=funding,
                workers=workers,
            )
            model = _model_settings(model_url, model_name, model_key, model_timeout)
        except (ValidationError, ValueError) as exc:
            _err.print(f"Error: {exc}")
            raise typer.Exit(2) from None
        if not data_dir.is_dir():
            _err.print(f"Error: data folder {data_dir} does not exist (use --data-dir).")
            raise typer.Exit(2)
        if model is not None and (problem := _model_problem(model)) is not None:
            # One line and a failing exit: scoring a dead endpoint would retry every prompt and then show the
            # HOLD fallback as if it were the model's result.
            _err.print(f"Error: {problem} Nothing was scored; fix --model-url or run without it.")
            raise typer.Exit(1)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=_err, transient=False) as bar:
            runs = len(cfg.seeds or [cfg.seed])
            tasks = {s: bar.add_task(f"{s} scenarios", total=scenarios * runs) for s in cfg.symbols}
            # Only positions still open at t are asked about: their count is known once the scenarios exist.
            model_task = bar.add_task("model", total=None, visible=model is not None)
            try:
                output = run_backtest(
                    data_dir,
                    cfg,
                    out,
                    model,
                    concurrency=concurrency,
                    progress=lambda sym, n: bar.advance(tasks[sym], n),
                    model_progress=lambda n: bar.advance(model_task, n),
                )
            except Exception as exc:  # a user sees a sentence, the log keeps the traceback
                _err.print(f"Error: {exc}")
                raise typer.Exit(1) from None
        _out.print(markdown(output.result))
        _out.print("Wrote: " + ", ".join(str(p) for p in output.files))


def _model_settings(url: str | None, name: str, key: str, timeout: float) -> ModelSettings | None:
    """ModelSettings for --model-url, or None when no model is scored."""
    if not url:
        return None
    from bastion.settings import ModelSettings

    return ModelSettings(base_url=url, risk_model=name, api_key=SecretStr(key), timeout_s=timeout)


def _model_problem(model: ModelSettings) -> str | None:
    """Why the endpoint cannot be scored (unreachable, key refused, model not served), or None when it can."""
    import asyncio

    from inference.health import check_endpoint

    report = asyncio.run(check_endpoint(model, timeout_s=min(model.timeout_s, 10.0)))
    if report.status in ("unreachable", "unauthorized"):
        return report.message.replace("BASTION_MODEL__BASE_URL", "--model-url")
    if report.status == "model_missing" and model.risk_model not in report.served_models:
        served = ", ".join(report.served_models) or "none"
        return f"The model server does not serve {model.risk_model!r} (served: {served}); use --model-name."
    return None
