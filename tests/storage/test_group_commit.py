"""storage/group_commit.GroupCommit on its own: batching, keyed sharing, failures, and a new event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage.group_commit import GroupCommit


class Flushes:
    """A flush that records its batches and, until released, holds the batch at the 'database'."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.entered = asyncio.Event()  # a batch is at the 'database'

    async def __call__(self, items: Sequence[tuple[str, int]]) -> list[str]:
        self.batches.append(list(items))
        self.entered.set()
        await self.release.wait()
        return [f"{key}={n}" for key, n in items]


def _key(item: tuple[str, int]) -> str:
    return item[0]


async def test_one_key_submitted_twice_is_flushed_once_and_both_callers_get_its_result() -> None:
    flush = Flushes()
    commit = GroupCommit(flush, key=_key)
    got = await asyncio.gather(commit.submit(("a", 1)), commit.submit(("a", 2)), commit.submit(("b", 3)))
    assert got == ["a=1", "a=1", "b=3"]  # the first item of a key stands for the later ones
    assert flush.batches == [[("a", 1), ("b", 3)]]


async def test_a_key_in_a_batch_now_is_shared_and_free_again_once_answered() -> None:
    flush = Flushes()
    flush.release.clear()
    commit = GroupCommit(flush, key=_key)
    first = asyncio.create_task(commit.submit(("a", 1)))
    await flush.entered.wait()
    joined = asyncio.create_task(commit.submit(("a", 2)))  # the same key while its batch is at the database
    flush.release.set()
    assert await asyncio.gather(first, joined) == ["a=1", "a=1"]
    assert await commit.submit(("a", 3)) == "a=3"  # answered: the next lookup reads afresh
    assert flush.batches == [[("a", 1)], [("a", 3)]]


async def test_without_a_key_every_item_is_written() -> None:
    flush = Flushes()
    commit = GroupCommit(flush)
    assert await asyncio.gather(commit.submit(("a", 1)), commit.submit(("a", 2))) == ["a=1", "a=2"]
    assert flush.batches == [[("a", 1), ("a", 2)]]


async def test_a_flush_returning_the_wrong_number_of_results_fails_its_callers_instead_of_hanging() -> None:
    async def short(items: Sequence[int]) -> list[int]:
        return list(items)[:-1] if len(items) > 1 else list(items)  # one result lost from a batch of several

    commit = GroupCommit(short)
    got = await asyncio.wait_for(asyncio.gather(commit.submit(1), commit.submit(2), return_exceptions=True), 30)
    assert all(isinstance(g, RuntimeError) and "1 results for 2 items" in str(g) for g in got)
    assert await commit.submit(3) == 3  # the next batch still works


async def test_a_cancelled_flusher_cancels_its_waiting_callers() -> None:
    flush = Flushes()
    flush.release.clear()
    commit = GroupCommit(flush, key=_key)
    in_batch = asyncio.create_task(commit.submit(("a", 1)))
    await flush.entered.wait()
    queued = asyncio.create_task(commit.submit(("b", 2)))
    await asyncio.sleep(0)
    assert commit._flusher is not None
    commit._flusher.cancel()
    for task in (in_batch, queued):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
    flush.release.set()
    assert await commit.submit(("a", 5)) == "a=5"  # a key freed by the failure, and a new flusher


def test_used_again_on_a_new_event_loop_it_starts_a_flusher_there() -> None:
    """A process that runs one asyncio loop after another (the console, tests) keeps one batcher across them."""
    flush = Flushes()
    commit = GroupCommit(flush, key=_key)

    async def stranded() -> None:
        flush.release.clear()
        asyncio.get_running_loop().create_task(commit.submit(("a", 1)))
        await flush.entered.wait()
        # the loop ends with the batch at the 'database': its flusher and its key are left behind

    loop = asyncio.new_event_loop()
    loop.run_until_complete(stranded())
    loop.close()

    async def next_loop() -> list[str]:
        flush.release = asyncio.Event()
        flush.release.set()
        both = asyncio.gather(commit.submit(("a", 2)), commit.submit(("c", 3)))
        return list(await asyncio.wait_for(both, 30))

    assert asyncio.run(next_loop()) == ["a=2", "c=3"]
