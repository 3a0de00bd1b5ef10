"""Render cost per message: Markdown to Telegram HTML, Discord and plain text, split to the platform limits.

    .venv/bin/python tests/bench/bench_render.py [--runs N] [--against REV]

Prints CPU (process time) and wall microseconds per message for four messages the bot writes: a short /price
reply, the command help, an analysis answer and a 12 KB analysis that splits into several chunks. Rendering runs
on every reply and every streamed edit, so these figures sit on the hot path of each update. With --against REV
(e.g. 7175c54, the last commit with the single-file bot/core/render.py) the CPU of that revision's render_for is
printed beside it, measured in the same process, under the same load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bot.core.render import render_for  # noqa: E402

PRICE = "**BTC/USDT:USDT** 61,250.5 (-2.3% 24h) · funding 0.0100% · `bastion levels BTC` for zones"

HELP = "**Commands**\n" + "\n".join(
    f"`/cmd{i} <symbol> [tf]` shows thing {i} for a *symbol* (e.g. BTC_USDT, 4h) 🚀" for i in range(30)
)

ANALYSIS = """# BTC/USDT:USDT 4h

**Bias:** long, MCF score 7.5 / short 3.0 (15m ✓ 1h ✓ 4h ✓ 1d ✗)
Price 61,250.5 (last close 61,190.0), holding the *4h* demand zone after a -2.3% sweep.

**Levels**
- support 60,900.0–61,050.0 (grade 3, 17 of 30 respected, at a volume node)
- resistance 63,400.0 (grade 2, 4 touches)
  - the weekly open at 62,880.5

**Plan (long)**
1. entry 61,100.0, stop 60,650.0, target 63,300.0, R:R 2.5
2. size 0.0123 BTC for 1% risk (`/size BTC 1%`)

> Not financial advice. Invalidation below 60,900 on a 4h close.

[chart](https://example.com/chart?s=BTC&tf=4h)"""


def _long() -> str:
    paragraph = (
        "**BTC/USDT:USDT** holds the *4h* demand zone at 61,250.5 after a -2.3% sweep (grade 3); "
        "funding is flat & open interest < last week. Invalidation below 60,900, R:R 2.5. "
    )
    code = "\n".join(f"level_{i} = {61000 + 37 * i}  # zone <{i}> & note" for i in range(80))
    parts = ["# Market structure", *(paragraph * 3 for _ in range(12)), f"```python\n{code}\n```"]
    parts += ["- " + paragraph for _ in range(10)]
    return "\n\n".join(parts)


MESSAGES = {"price": PRICE, "help": HELP, "analysis": ANALYSIS, "long 12 KB": _long()}


def per_message(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median (CPU µs, wall µs) of one call, over `runs` batches sized to about 20 ms each."""
    fn()
    c = time.process_time()
    fn()
    batch = max(1, int(0.02 / max(time.process_time() - c, 1e-6)))
    cpu, wall = [], []
    for _ in range(runs):
        c, w = time.process_time(), time.perf_counter()
        for _ in range(batch):
            fn()
        cpu.append(1e6 * (time.process_time() - c) / batch)
        wall.append(1e6 * (time.perf_counter() - w) / batch)
    return statistics.median(cpu), statistics.median(wall)


def render_at(rev: str) -> Callable[[str, str], list[str]]:
    """render_for of bot/core/render.py as it was at `rev` (a single module there), loaded beside today's."""
    source = subprocess.run(
        ["git", "show", f"{rev}:bot/core/render.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(f"render_at_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up while the class is built
    exec(compile(source, f"{rev}:bot/core/render.py", "exec"), module.__dict__)
    render: Callable[[str, str], list[str]] = module.render_for
    return render


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--against", help="a revision whose bot/core/render.py to time beside today's")
    args = parser.parse_args()
    before = render_at(args.against) if args.against else None
    extra = f"{'CPU µs at ' + args.against:>22}" if before else ""
    print(f"{'message':<12}{'chars':>7}  {'platform':<9}{'chunks':>7}{'CPU µs':>10}{'wall µs':>10}{extra}")
    for name, md in MESSAGES.items():
        for platform in ("telegram", "discord", "console"):
            chunks = len(render_for(platform, md))
            cpu, wall = per_message(partial(render_for, platform, md), args.runs)
            line = f"{name:<12}{len(md):>7}  {platform:<9}{chunks:>7}{cpu:>10.1f}{wall:>10.1f}"
            if before is not None:
                old = per_message(partial(before, platform, md), args.runs)[0]
                line += f"{old:>22.1f}"
            print(line)


if __name__ == "__main__":
    main()
