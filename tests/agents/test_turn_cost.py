"""What an offline-model turn costs beyond its answer: no thread-pool hop for routing, one parse of the message, no
token stream nobody fills, one commit for a checkpoint with its pruning (which a failed write rolls back), and
stored messages without their unset fields (the checkpoint is read back whole every turn)."""

from __future__ import annotations

import asyncio
import operator
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage, message_to_dict
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from agents.graph import build_graph
from agents.offline import intents
from agents.persistence import sqlite_persistence
from agents.runner import AnalystChat
from agents.state import from_dicts, to_dicts
from agents.wiring import build_deps
from bastion.app import Services
from tests.agents.helpers import chat_on, ctx


class _CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting what is sent to it."""

    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Count, then run as usual."""
        type(self).submitted += 1
        return super().submit(fn, *args, **kwargs)


def _fresh_price_question() -> str:
    # A text never asked before in this process: the offline model's parse of it cannot come from an earlier test.
    return f"what is the btc price, cost check {uuid.uuid4().int % 10**6}"


async def test_an_offline_turn_sends_nothing_to_the_default_thread_pool(services: Services, user_id: int) -> None:
    graph = build_graph(build_deps(services), InMemorySaver())
    chat = AnalystChat(graph, services.sessions)
    await chat.ask(ctx(user_id), "cost-1", "price btc")  # market paths generated, caches warm
    executor = _CountingExecutor(max_workers=1)
    asyncio.get_running_loop().set_default_executor(executor)
    _CountingExecutor.submitted = 0
    reply = await chat.ask(ctx(user_id), "cost-1", "overview sol")
    again = await chat.ask(ctx(user_id), "cost-1", "price btc")
    assert "funding" in reply.text and "BTC/USDT:USDT: " in again.text
    # A plain (sync) routing function would be run there, once per routing decision of every turn.
    assert _CountingExecutor.submitted == 0


async def test_the_offline_model_parses_a_turns_message_once(
    services: Services, user_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses: list[str] = []
    find_symbol = intents.find_symbol

    def counted(text: str) -> str | None:
        parses.append(text)
        return find_symbol(text)

    monkeypatch.setattr(intents, "find_symbol", counted)  # every parse of a message looks for its symbol once
    question = _fresh_price_question()
    async with chat_on(services) as chat:
        reply = await chat.ask(ctx(user_id), "cost-2", question)
    assert reply.text.startswith("[offline model] BTC/USDT:USDT: ") and (reply.grounding or {}).get("ok")
    assert parses == [question]  # two model steps (the tool call, the answer), one parse


async def test_an_offline_turn_runs_without_the_token_stream(services: Services, user_id: int) -> None:
    modes: list[Any] = []
    async with chat_on(services) as chat:
        astream = chat.graph.astream

        def spied(*args: Any, **kwargs: Any) -> Any:
            modes.append(kwargs["stream_mode"])
            return astream(*args, **kwargs)

        chat.graph.astream = spied  # type: ignore[method-assign]
        tokens: list[str] = []
        reply = await chat.ask(ctx(user_id), "cost-3", "price btc", on_token=tokens.append)
    assert reply.text.startswith("[offline model] BTC/USDT:USDT: ")
    assert modes == [["updates"]] and tokens == []  # a streaming model keeps its tokens (test_graph, test_http_model)


class _S(TypedDict):
    messages: Annotated[list[str], operator.add]


def _one_node_chat(saver: Any) -> Any:
    async def answer(s: _S) -> dict[str, list[str]]:
        return {"messages": ["a" * 200]}

    g = StateGraph(_S)
    g.add_node("answer", answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g.compile(checkpointer=saver)


async def test_a_checkpoint_and_its_pruning_are_one_commit_that_a_failed_write_undoes(tmp_path: Path) -> None:
    async with sqlite_persistence(tmp_path / "cp.db") as p:
        saver: Any = p.checkpointer
        graph = _one_node_chat(saver)
        config: Any = {"configurable": {"thread_id": "t"}}
        await graph.ainvoke({"messages": ["u"]}, config, durability="exit")
        statements: list[str] = []
        saver._writer.conn.set_trace_callback(statements.append)  # checkpoints are written on the loop's connection
        await graph.ainvoke({"messages": ["u"]}, config, durability="exit")
        saver._writer.conn.set_trace_callback(None)
        assert [s for s in statements if s.startswith("COMMIT")] == ["COMMIT"]
        assert any(s.startswith("DELETE FROM checkpoints") for s in statements)

        # The insert fails after the older rows were deleted: the deletes must go back with it.
        dumps = saver.serde.dumps_typed

        def failing(obj: Any) -> Any:
            if isinstance(obj, dict) and "channel_values" in obj:
                raise OSError("disk full")
            return dumps(obj)

        saver.serde.dumps_typed = failing
        with pytest.raises(OSError):
            await graph.ainvoke({"messages": ["u"]}, config, durability="exit")
        saver.serde.dumps_typed = dumps
        state = await graph.aget_state(config)
        assert state.values["messages"] == ["u", "a" * 200] * 2  # the last good checkpoint is still there
        after = await graph.ainvoke({"messages": ["u"]}, config, durability="exit")
        assert len(after["messages"]) == 6
        rows = await asyncio.to_thread(_count_rows, tmp_path / "cp.db")
    assert rows == 1


def _count_rows(path: Path) -> int:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0])


def test_stored_messages_leave_out_unset_fields_and_read_back_the_same() -> None:
    call = {"name": "get_price", "args": {"symbol": "btc"}, "id": "c1", "type": "tool_call"}
    bad = {"name": "x", "args": "{", "id": "c3", "error": "bad JSON", "type": "invalid_tool_call"}
    messages = [
        HumanMessage("price btc", id="1"),
        HumanMessage("Grounding check: ...", name="grounding_check", id="2"),
        AIMessage("", tool_calls=[call], id="3"),
        ToolMessage('{"last": 1}', tool_call_id="c1", name="get_price", status="success", id="4"),
        ToolMessage("Error: no such symbol", tool_call_id="c2", name="get_price", status="error", id="5"),
        AIMessage("BTC 0", additional_kwargs={"bastion_fixed": True}, response_metadata={"done": "stop"}, id="6"),
        AIMessage("", invalid_tool_calls=[bad], id="7"),
    ]
    stored = to_dicts(messages)
    assert stored[0] == {"type": "human", "data": {"content": "price btc", "id": "1"}}
    assert stored[2]["data"] == {"content": "", "id": "3", "tool_calls": [call]}
    assert from_dicts(stored) == messages
    assert [message_to_dict(m) for m in from_dicts(stored)] == [message_to_dict(m) for m in messages]
    # Checkpoints written before keep every field, and read back the same.
    assert from_dicts([message_to_dict(m) for m in messages]) == messages


async def test_the_agent_node_routes_itself_without_a_fresh_read_of_the_state(
    services: Services, user_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph.pregel import _algo

    fresh_reads: list[Any] = []
    local_read = _algo.local_read

    def counted(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("fresh") or (len(args) > 5 and args[5]):
            fresh_reads.append(args[4] if len(args) > 4 else kwargs.get("select"))
        return local_read(*args, **kwargs)

    monkeypatch.setattr(_algo, "local_read", counted)
    graph = build_graph(build_deps(services), InMemorySaver())
    chat = AnalystChat(graph, services.sessions)
    reply = await chat.ask(ctx(user_id), "cost-4", "price btc")
    assert reply.text.startswith("[offline model] BTC/USDT:USDT: ") and (reply.grounding or {}).get("ok")
    # A conditional edge after the agent read a copy of the whole state with the node's writes applied (the message
    # list merged a second time) and ran its function as a traced runnable of its own.
    assert fresh_reads == []
    assert "agent" not in graph.builder.branches  # the node returns a Command naming the next node (or none)


async def test_the_checkpoint_a_run_starts_from_is_read_on_the_loop_in_one_snapshot(tmp_path: Path) -> None:
    import sqlite3

    async with sqlite_persistence(tmp_path / "cp.db") as p:
        saver: Any = p.checkpointer
        graph = _one_node_chat(saver)
        config: Any = {"configurable": {"thread_id": "t"}}
        await graph.ainvoke({"messages": ["u"]}, config, durability="exit")
        hops: list[str] = []
        call = saver._call

        async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
            hops.append(fn.__name__)
            return await call(fn, *args, **kwargs)

        saver._call = counted
        written = saver.inline_writes
        await graph.ainvoke({"messages": ["u"]}, config, durability="exit")
        assert hops == []  # neither the read nor the write made a hop to the persistence thread
        assert saver.inline_writes == written + 1

        # The writer in the middle of a transaction: the read sees the last committed checkpoint, without waiting.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(saver._executor, saver.conn.execute, "DELETE FROM checkpoints")
        assert saver.conn.in_transaction
        found = await saver.aget_tuple(config)
        assert found is not None and found.checkpoint["channel_values"]["messages"] == ["u", "a" * 200] * 2
        await loop.run_in_executor(saver._executor, saver.conn.rollback)

        # A read that finds the file locked (another process's exclusive lock) waits for it on the thread instead.
        def locked(config: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

        saver._reader.get_tuple = locked
        hops.clear()
        found = await saver.aget_tuple(config)
        assert hops == ["get_tuple"] and found is not None
        assert found.checkpoint["channel_values"]["messages"] == ["u", "a" * 200] * 2


async def test_a_write_that_finds_the_lock_taken_waits_on_the_thread_and_the_loop_runs_on(tmp_path: Path) -> None:
    import sqlite3
    import time

    async with sqlite_persistence(tmp_path / "cp.db") as p:
        saver: Any = p.checkpointer
        graph = _one_node_chat(saver)
        config: Any = {"configurable": {"thread_id": "t"}}
        await graph.ainvoke({"messages": ["u"]}, config, durability="exit")
        other = sqlite3.connect(tmp_path / "cp.db", isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process writing: SQLite's one write lock is taken
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticking = asyncio.create_task(ticker())
        turn = asyncio.create_task(graph.ainvoke({"messages": ["u"]}, config, durability="exit"))
        await asyncio.sleep(0.5)
        assert not turn.done()  # its checkpoint waits for the lock, on the thread
        other.execute("COMMIT")
        other.close()
        result = await asyncio.wait_for(turn, 10)
        ticking.cancel()
        assert len(result["messages"]) == 4
        assert saver.thread_writes == 1 and saver.inline_writes == 1
        assert max(gaps) < 0.25  # the loop went on meanwhile (a stalled loop would show the 0.5 s wait)
        state = await graph.aget_state(config)
        assert state.values["messages"] == ["u", "a" * 200] * 2


async def test_the_wal_is_checkpointed_on_the_thread_after_so_many_inline_writes(tmp_path: Path) -> None:
    from agents.persistence import WAL_CHECKPOINT_FIRST

    async with sqlite_persistence(tmp_path / "cp.db") as p:
        saver: Any = p.checkpointer
        graph = _one_node_chat(saver)
        on_thread: list[str] = []
        on_loop: list[str] = []
        saver.conn.set_trace_callback(on_thread.append)
        saver._writer.conn.set_trace_callback(on_loop.append)
        for n in range(WAL_CHECKPOINT_FIRST):
            await graph.ainvoke({"messages": ["u"]}, {"configurable": {"thread_id": f"t{n}"}}, durability="exit")
        await asyncio.get_running_loop().run_in_executor(saver._executor, lambda: None)  # the thread caught up
        assert [s for s in on_thread if "wal_checkpoint" in s] == ["PRAGMA wal_checkpoint(PASSIVE)"]
        assert not any("wal_checkpoint" in s for s in on_loop)
        assert saver._writer.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never on the loop
        assert saver._writer.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0  # never waits on the loop


async def _wal_interval(path: Path, text: str, writes: int) -> tuple[int, float, int]:
    """(inline writes between WAL checkpoints, pages per write, WAL checkpoints run) after `writes` fresh threads."""
    async with sqlite_persistence(path) as p:
        saver: Any = p.checkpointer
        graph = _one_node_chat(saver)
        ran: list[str] = []
        saver.conn.set_trace_callback(lambda s: ran.append(s) if "wal_checkpoint" in s else None)
        for n in range(writes):
            await graph.ainvoke({"messages": [text]}, {"configurable": {"thread_id": f"t{n}"}}, durability="exit")
        await asyncio.get_running_loop().run_in_executor(saver._executor, lambda: None)
        return saver.wal_interval, saver.wal_pages_per_write, len(ran)


async def test_the_wal_checkpoint_interval_follows_the_pages_a_write_adds(tmp_path: Path) -> None:
    """Small checkpoints are checkpointed seldom (one WAL checkpoint is an fsync and a copy of every page), large
    ones more often: the WAL stays near WAL_CHECKPOINT_PAGES pages either way."""
    from agents.persistence import WAL_CHECKPOINT_FIRST, WAL_CHECKPOINT_MAX, WAL_CHECKPOINT_PAGES

    small = await _wal_interval(tmp_path / "small.db", "u", 3 * WAL_CHECKPOINT_FIRST)
    large = await _wal_interval(tmp_path / "large.db", "x" * 150_000, 3 * WAL_CHECKPOINT_FIRST)
    for interval, pages, _ in (small, large):
        assert pages > 0
        expected = min(max(round(WAL_CHECKPOINT_PAGES / pages), WAL_CHECKPOINT_FIRST), WAL_CHECKPOINT_MAX)
        assert interval == expected
    assert large[1] > 4 * small[1] and large[0] < small[0]
    assert small[2] == 1  # 48 small writes: the one after the first 16 set an interval beyond the rest
    assert large[2] >= 2  # tens of pages each: checkpointed again before 48 writes


async def test_langgraph_finds_the_savers_write_signatures_computed_once(tmp_path: Path) -> None:
    from langgraph.pregel._checkpoint import put_writes_accepts_task_path

    async with sqlite_persistence(tmp_path / "cp.db") as p:
        saver: Any = p.checkpointer
        # LangGraph calls inspect.signature on both on every run (about 0.05 ms each when not precomputed).
        for method in (saver.put_writes, saver.aput_writes):
            assert "__signature__" in vars(method.__func__)
            assert put_writes_accepts_task_path(method)


async def test_the_persistence_thread_runs_calls_in_order_with_their_results_and_errors() -> None:
    from agents.persistence import PersistenceThread

    worker = PersistenceThread("test-persistence")
    ran: list[int] = []
    try:
        # A caller that stops waiting does not stop the call, nor the ones after it (a write is never half-sent).
        slow = asyncio.ensure_future(worker.call(lambda: ran.append(0)))
        await asyncio.sleep(0)
        slow.cancel()
        results = await asyncio.gather(*(worker.call(lambda i=i: ran.append(i) or i * i) for i in range(1, 50)))
        assert results == [i * i for i in range(1, 50)] and ran == list(range(50))
        with pytest.raises(ValueError):
            await worker.call(int, "not a number")
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(worker, sum, [1, 2, 3]) == 6  # the Executor interface, same thread
        names = {await worker.call(lambda: __import__("threading").current_thread().name) for _ in range(3)}
        assert names == {"test-persistence"}
    finally:
        late = worker.submit(ran.append, 99)
        worker.shutdown(wait=True)
    assert late.done() and ran[-1] == 99  # what was handed over before the shutdown still ran
    with pytest.raises(RuntimeError):
        worker.submit(int)


async def test_a_single_tool_call_runs_in_the_nodes_own_task_and_several_run_concurrently() -> None:
    from types import SimpleNamespace

    from agents.nodes import run_tool_calls
    from agents.state import TurnContext

    tasks: list[Any] = []

    class _Toolkit:
        def allowed(self, name: str, may_trade: bool) -> bool:
            return True

        async def run(self, name: str, args: Any, ctx: Any) -> Any:
            tasks.append(asyncio.current_task())
            await asyncio.sleep(0)
            return SimpleNamespace(error=None, content=f"{name} ok", data=None)

    deps: Any = SimpleNamespace(toolkit=_Toolkit())
    runtime: Any = SimpleNamespace(context=TurnContext(1, may_trade=True), store=None)

    def calls(*names: str) -> AIMessage:
        made = [{"name": n, "args": {}, "id": f"c{i}", "type": "tool_call"} for i, n in enumerate(names)]
        return AIMessage("", tool_calls=made)

    out, _ = await run_tool_calls(deps, calls("get_price"), runtime)
    # One call is awaited in place: no task and gather future of its own (about 0.05 ms per tool step).
    assert [m.content for m in out] == ["get_price ok"] and tasks == [asyncio.current_task()]
    tasks.clear()
    out, _ = await run_tool_calls(deps, calls("get_price", "get_structure"), runtime)
    assert [m.content for m in out] == ["get_price ok", "get_structure ok"]
    assert len(set(tasks)) == 2 and asyncio.current_task() not in tasks
