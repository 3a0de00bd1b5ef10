"""Benchmark: bytes the process writes per conversation turn at 10 and 300 messages of history (SQLite saver).

A LangGraph chat of 200-character messages (one user message, one answer per turn) on the project's SQLite
checkpointer (agents/persistence.py), latest checkpoint kept (the default) and, for comparison, all kept. The
thread is first grown to the history size; then `--turns` turns are measured. Bytes written are the process's
own write() calls (`wchar` of /proc/self/io: SQLite pages and WAL frames, whatever the file system does with
them), and CPU is the process's, both per turn.

Run: python tests/bench/bench_checkpoints.py [--turns 20]
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from langgraph.graph import END, START, StateGraph

from agents.persistence import sqlite_persistence


class _State(TypedDict):
    messages: Annotated[list[str], operator.add]


def _graph(saver: Any) -> Any:
    g = StateGraph(_State)
    g.add_node("answer", lambda s: {"messages": ["a" * 200]})
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g.compile(checkpointer=saver)


def _written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


async def measure(keep: int | None, history: int, turns: int) -> tuple[float, float]:
    """(bytes written per turn, CPU ms per turn) at `history` messages."""
    with tempfile.TemporaryDirectory() as tmp:
        async with sqlite_persistence(Path(tmp) / "cp.db", keep=keep) as p:
            graph = _graph(p.checkpointer)
            config = {"configurable": {"thread_id": "t"}}
            for _ in range(history // 2):  # each turn adds two messages
                await graph.ainvoke({"messages": ["u" * 200]}, config)
            written, cpu = _written(), time.process_time()
            for _ in range(turns):
                await graph.ainvoke({"messages": ["u" * 200]}, config)
            return (_written() - written) / turns, 1000 * (time.process_time() - cpu) / turns


async def main(turns: int) -> None:
    """Both histories, latest-only and keep-all."""
    for keep, label in ((1, "latest checkpoint kept"), (None, "all checkpoints kept")):
        for history in (10, 300):
            per_turn, cpu = await measure(keep, history, turns)
            print(f"{label}: {history} messages of history: {per_turn / 1024:.1f} KiB written per turn, "
                  f"CPU {cpu:.2f} ms per turn")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    asyncio.run(main(parser.parse_args().turns))
