"""A worker process freezes what it inherited (full collections skip it) and still collects its own cycles."""

from __future__ import annotations

import gc
from concurrent.futures import ProcessPoolExecutor

from backtest.worker import worker_init


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
