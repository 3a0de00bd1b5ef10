"""Write a run's results: JSON (everything), a Markdown summary (makers side by side) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from backtest.config import CLASSES, BacktestConfig
from backtest.metrics import MakerScore, realised
from backtest.runner import ScenarioRun
from backtest.scenarios import KINDS, STOP_TYPES

REFERENCE = (
    "Reference model (SPEC §8, different, unpublished method): 75.4% accuracy (BTC 71.7%, ETH 72.7%, SOL 81.8%)."
)


class BacktestResult(BaseModel):
    """The JSON document of one run."""

    config: BacktestConfig
    scenarios: int
    mix: dict[str, dict[str, int]] = Field(description="Scenario counts by kind, stop type and side")
    best_share: dict[str, float] = Field(description="Share of scenarios where each class is in the best set")
    makers: list[MakerScore]
    seconds: float | None = None


def build_result(run: ScenarioRun, scores: list[MakerScore], seconds: float | None = None) -> BacktestResult:
    """Summary document of a run."""
    sc = run.scenarios
    mix = {
        "kind": {k: int((sc.kind == i).sum()) for i, k in enumerate(KINDS)},
        "stop": {k: int((sc.stop_type == i).sum()) for i, k in enumerate(STOP_TYPES)},
        "side": {"long": int((sc.d > 0).sum()), "short": int((sc.d < 0).sum())},
    }
    share = {c: float(run.best[:, i].mean()) for i, c in enumerate(CLASSES)}
    return BacktestResult(
        config=run.config, scenarios=len(sc), mix=mix, best_share=share, makers=scores, seconds=seconds
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def markdown(result: BacktestResult) -> str:
    """Makers side by side (mean R, capture, accuracy, per symbol) and the rules engine's confusion matrix."""
    cfg = result.config
    symbols = list(result.makers[0].per_symbol) if result.makers else []
    lines = [
        f"# Exit-decision backtest — {', '.join(cfg.symbols)} {cfg.timeframe}",
        "",
        f"{result.scenarios} scenarios (seed {cfg.seed}, H={cfg.horizon} bars, fee {cfg.fee * 100:.3f}%/side, "
        f"best set = within {cfg.tie_r} R of the best). Mix: "
        + "; ".join(f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items()) for k, v in result.mix.items()),
        "",
        "| maker | mean R | capture | accuracy | invalid | "
        + " | ".join(f"{s.split('/')[0]} R / acc" for s in symbols)
        + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(symbols),
    ]
    for m in result.makers:
        o = m.overall
        cells = [f"{m.per_symbol[s].mean_r:+.3f} / {_pct(m.per_symbol[s].accuracy)}" for s in symbols]
        capture = "n/a" if o.capture is None else f"{o.capture:+.3f}"
        lines.append(
            f"| {m.name} | {o.mean_r:+.3f} | {capture} | {_pct(o.accuracy)} | {o.invalid} | " + " | ".join(cells) + " |"
        )
    lines += ["", REFERENCE, ""]
    rules = next((m for m in result.makers if m.name == "rules"), None)
    if rules is not None:
        lines += [
            "## Rules engine: confusion matrix (rows: oracle's class, columns: chosen class)",
            "",
            "| oracle \\ chosen | " + " | ".join([*CLASSES, "INVALID"]) + " |",
            "|---|" + "---:|" * (len(CLASSES) + 1),
        ]
        for label, row in zip(CLASSES, rules.confusion, strict=True):
            lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
        lines += [
            "",
            "| class | chosen | precision | recall |",
            "|---|---:|---:|---:|",
            *(f"| {c} | {rules.chosen[c]} | {_pct(rules.precision[c])} | {_pct(rules.recall[c])} |" for c in CLASSES),
            "",
            f"Calibration (ECE {rules.ece:.3f}): "
            + ", ".join(f"[{b.low:.1f},{b.high:.1f}) n={b.n} acc {_pct(b.accuracy)}" for b in rules.calibration if b.n)
            if rules.ece is not None
            else "",
        ]
    return "\n".join(lines) + "\n"


def plots(run: ScenarioRun, result: BacktestResult, makers_classes: dict[str, np.ndarray], out: Path) -> list[Path]:
    """R distribution per maker, the rules' confusion matrix and calibration, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(9, 4.5))
    data = [np.clip(realised(c, run.outcomes), -3, 5) for c in makers_classes.values()]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(data) + 1), list(makers_classes), rotation=20)
    ax.set_ylabel("realised R (clipped to [-3, 5])")
    ax.set_title("R distribution per decision maker")
    written.append(_save(fig, out / "r_distribution.png"))
    rules = next((m for m in result.makers if m.name == "rules"), None)
    if rules is not None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5))
        mat = np.array(rules.confusion)
        ax.imshow(mat, cmap="Blues")
        ax.set_xticks(range(len(CLASSES) + 1), [*CLASSES, "INVALID"], rotation=20)
        ax.set_yticks(range(len(CLASSES)), list(CLASSES))
        for (i, j), v in np.ndenumerate(mat):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_xlabel("chosen")
        ax.set_ylabel("oracle")
        ax.set_title("Rules engine confusion matrix")
        written.append(_save(fig, out / "confusion_rules.png"))
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    for m in result.makers:
        pts = [(b.mean_confidence, b.accuracy) for b in m.calibration if b.n]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, "o-", label=f"{m.name} (ECE {m.ece:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Calibration")
    ax.legend(loc="best", fontsize=8)
    written.append(_save(fig, out / "calibration.png"))
    return written


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=110)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path


def write_all(run: ScenarioRun, result: BacktestResult, classes: dict[str, np.ndarray], out: Path) -> list[Path]:
    """results.json, summary.md and the plots in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.model_dump(mode="json"), indent=2))
    (out / "summary.md").write_text(markdown(result))
    return [out / "results.json", out / "summary.md", *plots(run, result, classes, out)]
