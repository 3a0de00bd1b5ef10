"""Write a run's results: JSON (everything), a Markdown summary (makers side by side) and PNG plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from backtest.calibration import CalibrationCheck
from backtest.config import CLASSES, BacktestConfig
from backtest.context import NO_FUNDING_FILE
from backtest.deciders import DeciderScore, decider_scores
from backtest.makers import Choices
from backtest.metrics import Difference, MakerScore, RuleScore, difference
from backtest.outcomes import CANDIDATES
from backtest.runner import ScenarioRun
from backtest.scenarios import KINDS, STOP_TYPES

REFERENCE = (
    "Reference model (SPEC §8, different, unpublished method): 75.4% accuracy (BTC 71.7%, ETH 72.7%, SOL 81.8%)."
)
COMPARED = ("always-HOLD", "always-EXIT", "random")


class BacktestResult(BaseModel):
    """The JSON document of one run."""

    config: BacktestConfig
    scenarios: int
    drawn: int = Field(description="Scenarios drawn; the rest were already flat at the close of t")
    mix: dict[str, dict[str, int]] = Field(description="Scenario counts by kind, stop type and side")
    best_share: dict[str, float] = Field(description="Share of scenarios where each class is in the best set")
    makers: list[MakerScore]
    rules_vs: dict[str, dict[str, Difference]] = Field(
        default_factory=dict, description="Per symbol (and 'all'): mean R of rules minus each baseline, paired"
    )
    attribution: list[RuleScore] = Field(default_factory=list)
    deciders: list[DeciderScore] = Field(
        default_factory=list, description="The rules engine against always-EXIT, by the rule that decided"
    )
    calibration: CalibrationCheck | None = Field(
        default=None, description="Rules' confidence fitted early, checked late"
    )
    funding: dict[str, str] = Field(
        default_factory=dict, description="Per symbol: whether funding was charged after t, and from which file"
    )
    seconds: float | None = None


def build_result(
    run: ScenarioRun,
    makers: Sequence[Choices],
    scores: list[MakerScore],
    rules_attr: list[RuleScore],
    seconds: float | None = None,
    calibration: CalibrationCheck | None = None,
) -> BacktestResult:
    """Summary document of a run."""
    sc = run.scenarios
    mix = {
        "kind": {k: int((sc.kind == i).sum()) for i, k in enumerate(KINDS)},
        "stop": {k: int((sc.stop_type == i).sum()) for i, k in enumerate(STOP_TYPES)},
        "side": {"long": int((sc.d > 0).sum()), "short": int((sc.d < 0).sum())},
    }
    share = {c: float(run.best[:, i].mean()) for i, c in enumerate(CLASSES)}
    by_name = {m.name: m for m in makers}
    cluster = sc.cluster()
    vs: dict[str, dict[str, Difference]] = {}
    if "rules" in by_name:
        rules = by_name["rules"].r
        for label in ["all", *dict.fromkeys(sc.symbol.tolist())]:
            m = np.ones(len(sc), bool) if label == "all" else sc.symbol == label
            vs[str(label)] = {b: difference(rules[m], by_name[b].r[m], cluster[m]) for b in COMPARED if b in by_name}
    return BacktestResult(
        config=run.config,
        scenarios=len(sc),
        drawn=run.drawn,
        mix=mix,
        best_share=share,
        makers=scores,
        rules_vs=vs,
        attribution=rules_attr,
        deciders=decider_scores(run.rules_rule, run.rules.r, run.hold_r, run.exit_r, cluster, sc.symbol, sc.bar),
        calibration=calibration,
        funding=run.funding,
        seconds=seconds,
    )


def funding_words(funding: dict[str, str]) -> str:
    """The report's funding clause: one phrase when no symbol had a funding-rate file, else each symbol's."""
    if all(v == NO_FUNDING_FILE for v in funding.values()):
        return "no funding (no funding-rate files: spot candles)"
    return "funding: " + "; ".join(f"{s.split('/')[0]} {v}" for s, v in funding.items())


def _pct(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.1f}%"


def _r(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:+.3f}"


def _pm(mean: float, se: float) -> str:
    # NaN: no rows (a half without the rule) or one cluster (no SE); said in words, not "+nan".
    if mean != mean:
        return "n/a"
    return f"{mean:+.3f} ± " + ("n/a" if se != se else f"{se:.3f}")


def _verdict(d: Difference) -> str:
    if d.se != d.se or d.se == 0:
        return "n/a"
    z = d.mean / d.se
    return "better by ≥ 2 SE" if z >= 2 else "better, < 2 SE" if z > 0 else "worse"


def winner_sentence(result: BacktestResult) -> str:
    """Which maker (the oracle aside) made the most R, and by how much over the runner-up (paired, clustered SE)."""
    ranked = sorted((m for m in result.makers if m.name != "oracle"), key=lambda m: -m.overall.mean_r)
    if len(ranked) < 2:
        return ""
    first, second = ranked[0], ranked[1]
    gap = first.overall.mean_r - second.overall.mean_r
    text = (
        f"**{first.name}** made the most R ({first.overall.mean_r:+.3f} per scenario), {gap:.3f} R more than "
        f"{second.name}"
    )
    rules_vs = result.rules_vs.get("all", {})
    if first.name == "rules" and second.name in rules_vs:
        d = rules_vs[second.name]
        text += f" ({_pm(d.mean, d.se)}, paired: {_verdict(d)})"
    elif second.name == "rules" and first.name in rules_vs:
        d = rules_vs[first.name]
        text += f" (rules minus {first.name} {_pm(d.mean, d.se)}, paired)"
    return text + f"; the oracle would make {next(m.overall.mean_r for m in result.makers if m.name == 'oracle'):+.3f}."


def rule_verdict(a: RuleScore) -> str:
    """Whether a rule earns its place, from its own decision's R against holding where it fired."""
    d = a.vs_hold
    if d.se != d.se or d.se == 0:
        return "too rare to judge"
    z = d.mean / d.se
    if z >= 2:
        return "adds R (≥ 2 SE): on"
    if z >= 0:
        return "adds R, < 2 SE: on"
    if z > -2:
        return "loses R, < 2 SE (not measurable): on"
    return "loses R by ≥ 2 SE: turn off or fix"


def markdown(result: BacktestResult) -> str:
    """Makers side by side (mean R ± clustered SE, median, CVaR, win rate, regret, capture, accuracy, per symbol),
    the rules against each baseline, per-action precision/recall, the per-rule attribution and the rules against
    always-EXIT by deciding rule."""
    cfg = result.config
    symbols = list(result.makers[0].per_symbol) if result.makers else []
    seeds = cfg.seeds or [cfg.seed]
    lines = [
        f"# Exit-decision backtest — {', '.join(cfg.symbols)} {cfg.timeframe}",
        "",
        f"{result.scenarios} open-position scenarios of {result.drawn} drawn (the rest were flat at the close of t); "
        f"seeds {', '.join(map(str, seeds))}; H={cfg.horizon} bars from t+1; fee {cfg.fee * 100:.3f}%/side; "
        f"slippage {cfg.slippage * 100:.3f}% per market fill; {funding_words(result.funding)}; stop before target "
        f"inside a bar. Best set = candidates within {cfg.tie_r} R of the best "
        f"({', '.join(c[0] for c in CANDIDATES)}). "
        "R is per unit still open at t; ± is one standard error clustered by scenario group. Mix: "
        + "; ".join(f"{k}: " + ", ".join(f"{a} {b}" for a, b in v.items()) for k, v in result.mix.items()),
        "",
        "| maker | mean R ± SE | median R | CVaR 5% | win rate | regret | capture | accuracy | invalid | "
        + " | ".join(f"{s.split('/')[0]} R ± SE" for s in symbols)
        + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(symbols),
    ]
    for m in result.makers:
        o = m.overall
        cells = [_pm(m.per_symbol[s].mean_r, m.per_symbol[s].se) for s in symbols]
        lines.append(
            f"| {m.name} | {_pm(o.mean_r, o.se)} | {_r(o.median_r)} | {_r(o.cvar5)} | {_pct(o.win_rate)} | "
            f"{o.regret:.3f} | {_r(o.capture)} | {_pct(o.accuracy)} | {o.invalid} | " + " | ".join(cells) + " |"
        )
    lines += ["", winner_sentence(result), "", REFERENCE, ""]
    if result.rules_vs:
        lines += [
            "## Rules minus each baseline (paired, mean R ± clustered SE)",
            "",
            "| symbol | " + " | ".join(f"vs {b}" for b in COMPARED) + " |",
            "|---|" + "---|" * len(COMPARED),
        ]
        for label, diffs in result.rules_vs.items():
            cells = [f"{_pm(diffs[b].mean, diffs[b].se)} ({_verdict(diffs[b])})" for b in COMPARED if b in diffs]
            lines.append(f"| {label.split('/')[0]} | " + " | ".join(cells) + " |")
        lines.append("")
    rules = next((m for m in result.makers if m.name == "rules"), None)
    if rules is not None:
        lines += [
            "## Rules engine per action class",
            "",
            "| class | chosen | in best set | precision | recall |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| {c} | {rules.chosen[c]} | {_pct(result.best_share[c])} | {_pct(rules.precision[c])} | "
                f"{_pct(rules.recall[c])} |"
                for c in CLASSES
            ),
            "",
        ]
        if rules.ece is not None:
            lines += [
                f"Calibration (ECE {rules.ece:.3f}): "
                + ", ".join(
                    f"[{b.low:.1f},{b.high:.1f}) n={b.n} acc {_pct(b.accuracy)}" for b in rules.calibration if b.n
                ),
                "",
            ]
    if result.attribution:
        lines += [
            "## Per-rule attribution (where the rule fired, its own decision simulated as given)",
            "",
            "| rule | fired | decided | R vs HOLD ± SE | R vs EXIT ± SE | verdict |",
            "|---|---:|---:|---:|---:|---|",
            *(
                f"| {a.rule} | {a.fired} | {a.won} | {_pm(a.vs_hold.mean, a.vs_hold.se)} | "
                f"{_pm(a.vs_exit.mean, a.vs_exit.se)} | {rule_verdict(a)} |"
                for a in result.attribution
            ),
            "",
        ]
    if result.deciders:
        lines += [
            "## Where the rules stand against always-EXIT, by the rule that decided",
            "",
            "Rules minus always-EXIT on the scenarios each rule decided ('hold': none acted), largest loss first; "
            "'HOLD − EXIT' is what holding made there; the halves are each symbol's earlier and later evaluation "
            "bars (a sign that flips between them is noise).",
            "",
            "| decided by | scenarios | share | rules − EXIT ± SE | total R | HOLD − EXIT ± SE | earlier half | "
            "later half |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {s.rule} | {s.n} | {_pct(s.share)} | {_pm(s.vs_exit.mean, s.vs_exit.se)} | {s.vs_exit_sum:+.1f} | "
                f"{_pm(s.hold_vs_exit.mean, s.hold_vs_exit.se)} | {_pm(s.early.mean, s.early.se)} | "
                f"{_pm(s.late.mean, s.late.se)} |"
                for s in result.deciders
            ),
            "",
        ]
    cal = result.calibration
    if cal is not None:
        lines += [
            "## Rules confidence calibrated per rule (fitted on the earlier half of bars, checked on the later half)",
            "",
            f"Check period: {cal.check_n} scenarios (fit on {cal.fit_n}). ECE of the rules' own confidence "
            f"{cal.raw_ece:.3f}; of the calibrated one {cal.ece:.3f}; accuracy "
            + ("never falls" if cal.monotone else "falls somewhere")
            + " as calibrated confidence rises: "
            + ", ".join(f"[{b.low:.1f},{b.high:.1f}) n={b.n} acc {_pct(b.accuracy)}" for b in cal.bins if b.n),
            "",
        ]
    return "\n".join(lines) + "\n"


def plots(result: BacktestResult, makers_r: dict[str, np.ndarray], out: Path) -> list[Path]:
    """R distribution per maker and the confidence calibration, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(9, 4.5))
    data = [np.clip(r[np.isfinite(r)], -3, 5) for r in makers_r.values()]
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(data) + 1), list(makers_r), rotation=20)
    ax.set_ylabel("realised R (clipped to [-3, 5])")
    ax.set_title("R distribution per decision maker")
    written.append(_save(fig, out / "r_distribution.png"))
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


def write_all(run: ScenarioRun, result: BacktestResult, makers_r: dict[str, np.ndarray], out: Path) -> list[Path]:
    """results.json, summary.md and the plots in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.model_dump(mode="json"), indent=2))
    (out / "summary.md").write_text(markdown(result))
    return [out / "results.json", out / "summary.md", *plots(result, makers_r, out)]
