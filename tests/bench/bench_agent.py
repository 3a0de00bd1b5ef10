"""Benchmark: 200 concurrent conversations x 5 turns through the analyst graph (offline model, SQLite checkpoints).

Run: `python tests/bench/bench_agent.py [--conversations 200] [--turns 5] [--think 1.5]` (pin two cores with
`taskset -c 0,1`). Targets (issue 6): p99 <= 150 ms, >= 100 turns/s on 2 cores.

Every turn is `AnalystChat.ask` with the real graph, the offline model, the SQLite checkpointer and store, the
simulated market and the user's own paper account on the SQLite app database. Two runs, each with fresh threads:
- paced: a conversation waits a think time between its turns (people do not all press enter at once), so the
  load is about conversations / think turns/s; it gives the latency (p50, p99, max) at that load, and the
  turns/s it achieved, which the think time itself bounds;
- closed loop: no think time, each conversation sends its next message as soon as it has the answer: the
  capacity in turns/s (latency there is mostly time spent queueing).
A turn fails unless its answer is the expected one (offline answer of the right kind, grounding check passed).

Then, one turn at a time (no concurrency), per message kind: the CPU of a whole turn, of its tool calls alone
(the same calls through the Toolkit, outside the graph) and what is left for the graph, the offline model and the
checkpoint; beside them LangGraph's floor, a graph of one trivial async node run the same way, without a
checkpointer and with the project's SQLite one. No turn of the analyst graph can cost less than that floor.
Last, one conversation grown to the 300 stored messages (100 turns): what a turn costs at the start and at the cap.

Before measuring, the state of a bot that is already running: one user per conversation exists (their paper
account is first used, and written, during the run), each message kind was answered once (simulated market
paths generated, caches warm), and the startup heap is frozen with `gc.freeze()`, as a long-running server
should do after startup so that full garbage collections do not scan it (`--no-gc-freeze` shows the
difference: one 100-150 ms pause then lands in the run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from langgraph.graph import END, START, StateGraph

from agents.persistence import Persistence, sqlite_persistence
from agents.runner import AnalystChat
from agents.state import TurnContext
from agents.wiring import build_chat
from bastion.app import Services, build_services
from bastion.settings import Settings
from bot.console.adapter import ensure_console_user as ensure_user
from storage import migrate
from tools.agent_tools import ToolContext

# Each message with a piece of text its answer must contain.
TURNS = (
    ("price btc", "BTC/USDT:USDT: "),
    ("levels eth 4h", "ETH/USDT:USDT 4h structure"),
    ("size btc entry 60000 stop 59000 risk 1%", "Position size for BTC/USDT:USDT"),
    ("overview sol", "funding"),
    ("balance", "Account paper"),
)


@dataclass
class RunResult:
    """Latencies and failures of one run."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0

    def line(self, name: str) -> str:
        """One line of figures."""
        q = statistics.quantiles(self.latencies, n=100)
        n = len(self.latencies)
        return (
            f"{name}: {n} turns in {self.wall:.2f} s = {n / self.wall:.1f} turns/s; latency p50 {1000 * q[49]:.1f} ms"
            f"  p99 {1000 * q[98]:.1f} ms  max {1000 * max(self.latencies):.1f} ms; failures {len(self.failures)}; "
            f"CPU {1000 * self.cpu / n:.2f} ms/turn (all threads)"
        )


async def _ok(chat: AnalystChat, ctx: TurnContext, thread: str, text: str, marker: str) -> str | None:
    """None when the answer is right, else what was wrong."""
    try:
        reply = await chat.ask(ctx, thread, text)
    except Exception as exc:  # a crash is a failure to report, not a reason to stop the run
        return f"{text!r}: {exc!r}"
    good = reply.text.startswith("[offline model]") and marker in reply.text and reply.approval is None
    if not good or not reply.grounding or reply.grounding.get("ok") is not True:
        return f"{text!r}: {reply.text[:120]!r} grounding={reply.grounding}"
    return None


async def drive(chat: AnalystChat, users: list[int], turns: int, think_s: float, tag: str) -> RunResult:
    """All conversations at once; with think time they start spread over one think time."""
    rng = random.Random(7)
    result = RunResult()

    async def conversation(i: int) -> None:
        ctx = TurnContext(user_id=users[i], may_trade=True)
        if think_s:
            await asyncio.sleep(rng.uniform(0, think_s))
        for t in range(turns):
            if t and think_s:
                await asyncio.sleep(rng.uniform(0.5 * think_s, 1.5 * think_s))
            text, marker = TURNS[(i + t) % len(TURNS)]
            started = time.perf_counter()
            error = await _ok(chat, ctx, f"{tag}-{i}", text, marker)
            result.latencies.append(time.perf_counter() - started)
            if error:
                result.failures.append(error)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(conversation(i) for i in range(len(users))))
    result.wall, result.cpu = time.perf_counter() - started, time.process_time() - cpu
    return result


class _Floor(TypedDict):
    messages: Annotated[list[str], operator.add]
    inbox: str | None


async def _echo(state: _Floor) -> dict[str, Any]:
    return {"messages": [state["inbox"] or ""], "inbox": None}


def trivial_graph(checkpointer: Any) -> Any:
    """LangGraph's floor: one async node that appends the message, on `checkpointer` (None: no checkpoint)."""
    g = StateGraph(_Floor, context_schema=TurnContext)
    g.add_node("echo", _echo)
    g.add_edge(START, "echo")
    g.add_edge("echo", END)
    return g.compile(checkpointer=checkpointer)


async def floor_ms(graph: Any, users: list[int], rounds: int, tag: str) -> float:
    """CPU ms per run of `graph`, one run at a time, as a turn is run (updates stream, one checkpoint at exit)."""
    started = time.process_time()
    for r in range(rounds):
        for i, user in enumerate(users):
            config: Any = {"configurable": {"thread_id": f"{tag}-{i}"}}
            kwargs: dict[str, Any] = {"durability": "exit"} if graph.checkpointer else {}
            async for _ in graph.astream(
                {"inbox": f"message {r}"}, config, context=TurnContext(user), stream_mode=["updates"], **kwargs
            ):
                pass
    return 1000 * (time.process_time() - started) / (rounds * len(users))


async def breakdown(chat: AnalystChat, persistence: Persistence, users: list[int], rounds: int) -> list[str]:
    """Per message kind, one turn at a time: CPU of the turn, of its tool calls alone, and the difference."""
    toolkit = chat.toolkit
    calls: dict[str, list[tuple[str, Any]]] = {}
    run, current = toolkit.run, ""

    async def recorded(name: str, args: Any, ctx: ToolContext) -> Any:
        calls.setdefault(current, []).append((name, args))
        return await run(name, args, ctx)

    toolkit.run = recorded
    for current, marker in TURNS:
        if error := await _ok(chat, TurnContext(users[0], may_trade=True), "calls", current, marker):
            raise SystemExit(f"answer is wrong: {error}")
    toolkit.run = run
    lines, turns = [], []
    for text, marker in TURNS:
        started = time.process_time()
        for r in range(rounds):
            for i, user in enumerate(users):
                if error := await _ok(chat, TurnContext(user, may_trade=True), f"one-{r}-{i}", text, marker):
                    raise SystemExit(f"answer is wrong: {error}")
        turn = 1000 * (time.process_time() - started) / (rounds * len(users))
        started = time.process_time()
        for _ in range(rounds):
            for user in users:
                tool_ctx = ToolContext(user_id=user, store=persistence.store)  # as the graph's tools node has it
                for name, args in calls.get(text, []):
                    await toolkit.run(name, args, tool_ctx)
        tools = 1000 * (time.process_time() - started) / (rounds * len(users))
        names = ", ".join(name for name, _ in calls.get(text, [])) or "none"
        turns.append(turn)
        lines.append(
            f"  {text!r}: {turn:.2f} ms per turn = tools ({names}) {tools:.2f} + graph, model, checkpoint "
            f"{turn - tools:.2f}"
        )
    bare = await floor_ms(trivial_graph(None), users, rounds, "floor-bare")
    saved = await floor_ms(trivial_graph(persistence.checkpointer), users, rounds, "floor-saved")
    return [
        f"one turn at a time, CPU per turn (all threads), {rounds * len(users)} turns per kind: mean "
        f"{statistics.mean(turns):.2f} ms",
        *lines,
        f"  LangGraph floor, one trivial async node: {bare:.2f} ms without a checkpointer, {saved:.2f} ms with the "
        "SQLite checkpointer",
    ]


async def long_thread(chat: AnalystChat, user: int, turns: int) -> str:
    """CPU per turn of one conversation grown to the stored cap: its first 20 turns against its last 20."""
    ctx, cpu, sizes = TurnContext(user, may_trade=True), [], []
    for t in range(turns):
        text, marker = TURNS[(0, 3)[t % 2]]  # price and overview: tools of a fraction of a millisecond
        started = time.process_time()
        if error := await _ok(chat, ctx, "long", text, marker):
            raise SystemExit(f"answer is wrong: {error}")
        cpu.append(time.process_time() - started)
        if t in (19, turns - 1):
            sizes.append(len((await chat.graph.aget_state(chat._config("long"))).values["messages"]))
    first, last = 1000 * statistics.mean(cpu[:20]), 1000 * statistics.mean(cpu[-20:])
    return (
        f"one long conversation, CPU per turn: {first:.2f} ms over its first 20 turns ({sizes[0]} messages stored), "
        f"{last:.2f} ms over its last 20 ({sizes[-1]} stored)"
    )


async def prepare(services: Services, chat: AnalystChat, conversations: int) -> list[int]:
    """One user per conversation (with a paper account never used yet), and every message kind answered once."""
    users = [await ensure_user(services.sessions, platform_user_id=f"bench-{i}") for i in range(conversations)]
    for text, marker in TURNS:
        if error := await _ok(chat, TurnContext(users[0], may_trade=True), "warmup", text, marker):
            raise SystemExit(f"warm-up answer is wrong: {error}")
    return users


async def run(conversations: int, turns: int, think_s: float, freeze: bool, rounds: int, long_turns: int) -> None:
    """Prepare, run paced and closed loop, print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{tmp}/app.db", "checkpoint_path": Path(tmp) / "checkpoints.db"},
            trading_open=True,  # the bench users ask for their balance too
        )
        async with build_services(settings) as services, sqlite_persistence(Path(tmp) / "checkpoints.db") as p:
            await migrate.upgrade(services.engine)
            chat = build_chat(services, p)
            users = await prepare(services, chat, conversations)
            if freeze:
                gc.collect()
                gc.freeze()
            paced = await drive(chat, users, turns, think_s, "paced")
            closed = await drive(chat, users, turns, 0.0, "closed")
            one_at_a_time = await breakdown(chat, p, users[:20], rounds) if rounds else []
            if long_turns:
                one_at_a_time.append(await long_thread(chat, users[0], long_turns))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"conversations={conversations} turns/conversation={turns} think={think_s:g}s cores={cores} "
        f"gc.freeze={'yes' if freeze else 'no'}"
    )
    print(paced.line(f"paced (think {think_s:g} s)"))
    print(closed.line("closed loop (no think time)"))
    for failure in (paced.failures + closed.failures)[:5]:
        print("  failed:", failure)
    for line in one_at_a_time:
        print(line)


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--think", type=float, default=1.5, help="mean seconds between a user's turns (paced run)")
    parser.add_argument("--no-gc-freeze", action="store_true", help="leave the startup heap to the collector")
    parser.add_argument("--rounds", type=int, default=2, help="turns per user and kind, one at a time (0: skip)")
    parser.add_argument("--long", type=int, default=100, help="turns of the long conversation (0: skip; >= 40)")
    args = parser.parse_args()
    asyncio.run(run(args.conversations, args.turns, args.think, not args.no_gc_freeze, args.rounds, args.long))


if __name__ == "__main__":
    main()
