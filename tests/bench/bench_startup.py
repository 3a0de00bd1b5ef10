"""Start-up time of the CLI: `bastion --version` and `--help` (lazy command modules) beside a full import of every
command module (what each start cost before), wall and CPU per run, median of several runs, side by side."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time

RUNS = 5
CASES = {
    "bastion --version": [sys.executable, "-m", "bastion.cli", "--version"],
    "bastion --help": [sys.executable, "-m", "bastion.cli", "--help"],
    "import every command module": [
        sys.executable,
        "-c",
        "from bastion.cli.lazy import COMMANDS, load_module\n"
        "for m in sorted({m for m, _ in COMMANDS.values()}): load_module(m)",
    ],
}


def measure(cmd: list[str]) -> tuple[float, float]:
    """Median wall and CPU seconds (user + system of the child) of RUNS runs."""
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    """Print each case's median wall and CPU, and the ratio to the full import."""
    results = {name: measure(cmd) for name, cmd in CASES.items()}
    full_wall, _ = results["import every command module"]
    for name, (wall, cpu) in results.items():
        ratio = wall / full_wall
        print(f"{name:<30} wall {wall * 1000:7.0f} ms  CPU {cpu * 1000:7.0f} ms  ({ratio:.2f}x the full import)")


if __name__ == "__main__":
    main()
