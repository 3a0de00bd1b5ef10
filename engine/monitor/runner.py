"""Run monitor cycles periodically until stopped; one failed cycle is logged and the next one runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from engine.monitor.monitor import CycleReport, Monitor

log = logging.getLogger(__name__)


async def run_periodically(
    monitor: Monitor,
    interval_s: float,
    *,
    cycles: int | None = None,
    on_cycle: Callable[[CycleReport], None] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run a cycle every `interval_s` seconds (`cycles` times, or until `stop` is set); returns cycles run."""
    stop = stop or asyncio.Event()
    done = 0
    while not stop.is_set() and (cycles is None or done < cycles):
        started = asyncio.get_running_loop().time()
        try:
            report = await monitor.run_cycle()
            if on_cycle is not None:
                on_cycle(report)
        except Exception:  # a broken cycle must not end monitoring; the next one may succeed
            log.exception("monitor cycle failed")
        done += 1
        if cycles is not None and done >= cycles:
            break
        wait = max(0.0, interval_s - (asyncio.get_running_loop().time() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
    return done
