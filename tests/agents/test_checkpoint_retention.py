"""Checkpoint retention: only the latest checkpoint per thread is kept (SQLite and PostgreSQL), so storage stays
linear in the conversations, not quadratic in their length; the state and an interrupted run's resume survive."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agents.persistence import postgres_persistence, psycopg_url, sqlite_persistence


class S(TypedDict):
    messages: Annotated[list[str], operator.add]


def _chat(saver: Any) -> Any:
    g = StateGraph(S)
    g.add_node("answer", lambda s: {"messages": ["a" * 200]})
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g.compile(checkpointer=saver)


def _approval(saver: Any) -> Any:
    def ask(s: S) -> dict[str, list[str]]:
        decision = interrupt({"type": "approval"})
        return {"messages": [f"decided {decision}"]}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=saver)


async def _turns(graph: Any, thread: str, n: int) -> None:
    config = {"configurable": {"thread_id": thread}}
    for _ in range(n):
        await graph.ainvoke({"messages": ["u" * 200]}, config)


async def _sqlite_stats(path: Path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        rows, size = conn.execute("SELECT count(*), coalesce(sum(length(checkpoint)), 0) FROM checkpoints").fetchone()
    return int(rows), int(size)


async def test_sqlite_keeps_the_latest_checkpoint_only(tmp_path: Path) -> None:
    async with sqlite_persistence(tmp_path / "kept.db") as p:
        graph = _chat(p.checkpointer)
        await _turns(graph, "t", 10)
        rows10, size10 = await _sqlite_stats(tmp_path / "kept.db")
        await _turns(graph, "t", 140)  # 300 messages of history
        rows300, size300 = await _sqlite_stats(tmp_path / "kept.db")
        state = await graph.aget_state({"configurable": {"thread_id": "t"}})
    assert len(state.values["messages"]) == 300  # nothing of the conversation is lost
    assert rows10 == rows300 == 1
    async with sqlite_persistence(tmp_path / "all.db", keep=None) as p:
        await _turns(_chat(p.checkpointer), "t", 150)
        rows_all, size_all = await _sqlite_stats(tmp_path / "all.db")
    print(f"sqlite checkpoint bytes stored: 20 msgs {size10}, 300 msgs {size300}; whole history {size_all}")
    assert rows_all >= 150 and size_all > 50 * size300  # what the history used to cost


async def test_an_interrupted_run_resumes_after_pruning(tmp_path: Path) -> None:
    async with sqlite_persistence(tmp_path / "cp.db") as p:
        graph = _approval(p.checkpointer)
        config = {"configurable": {"thread_id": "t"}}
        await graph.ainvoke({"messages": ["open long"]}, config)
        assert (await graph.aget_state(config)).interrupts
        out = await graph.ainvoke(Command(resume="approve"), config)
    assert out["messages"] == ["open long", "decided approve"]


@pytest.mark.postgres
async def test_postgres_keeps_the_latest_checkpoint_and_the_blobs_it_uses(postgres_url: str) -> None:
    import psycopg

    async with postgres_persistence(postgres_url) as p:
        graph = _chat(p.checkpointer)
        await _turns(graph, "t", 150)
        state = await graph.aget_state({"configurable": {"thread_id": "t"}})
        approval = _approval(p.checkpointer)
        config = {"configurable": {"thread_id": "a"}}
        await approval.ainvoke({"messages": ["open long"]}, config)
        resumed = await approval.ainvoke(Command(resume="approve"), config)
    assert len(state.values["messages"]) == 300
    assert resumed["messages"] == ["open long", "decided approve"]
    async with await psycopg.AsyncConnection.connect(psycopg_url(postgres_url)) as conn:
        cur = await conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = 't'")
        assert (await cur.fetchone()) == (1,)
        cur = await conn.execute("SELECT count(*) FROM checkpoint_blobs WHERE thread_id = 't'")
        blobs = (await cur.fetchone())[0]  # type: ignore[index]
    assert blobs <= 3  # the latest value of each channel, not one per turn
