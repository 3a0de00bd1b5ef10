"""A worker process freezes what it inherited (full collections skip it) and still collects its own cycles; an
in-process run freezes the heap only while it runs."""

from __future__ import annotations

import gc
from concurrent.futures import ProcessPoolExecutor

import pytest

from backtest.worker import heap_frozen, worker_init


@pytest.fixture(autouse=True)
def _collector_unfrozen() -> None:
    """The workers fork from this process: whatever it froze before (a server run in-process by an earlier test
    freezes its start-up heap while it runs) would read as frozen by them."""
    gc.unfreeze()


def _in_worker() -> tuple[int, int]:
    frozen = gc.get_freeze_count()
    a: list[object] = []
    a.append(a)  # a cycle made by the worker: garbage once dropped
    del a
    return frozen, gc.collect()


def test_worker_freezes_inherited_objects_and_collects_its_own() -> None:
    with ProcessPoolExecutor(max_workers=1, initializer=worker_init) as pool:
        frozen, collected = pool.submit(_in_worker).result()
    assert frozen > 1000 and collected >= 1
    with ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(_in_worker).result()[0] == 0  # without it nothing is frozen


def _frozen_run() -> tuple[int, int, int, int]:
    with heap_frozen():
        during = gc.get_freeze_count()
    after = gc.get_freeze_count()
    gc.freeze()  # something in the process froze objects already: heap_frozen leaves that alone
    before = gc.get_freeze_count()
    with heap_frozen():
        kept = gc.get_freeze_count()
    return during, after, before, kept - gc.get_freeze_count()


def test_an_in_process_run_freezes_the_heap_only_while_it_runs() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:  # a fresh process: this one's collector stays as it is
        during, after, before, changed = pool.submit(_frozen_run).result()
    assert during > 1000 and after == 0 and before > 1000 and changed == 0
