"""The one retry helper: backoff arithmetic, which failures are retried, how many times."""

from __future__ import annotations

import pytest

from storage.retry import RetryPolicy, retry_async


class Flaky:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_delays_double_up_to_the_cap_and_rate_limits_wait_longer() -> None:
    policy = RetryPolicy(attempts=5, base_delay_s=0.5, max_delay_s=3.0, rate_limit_factor=4.0)
    assert [policy.delay_s(r) for r in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay_s(0, rate_limited=True) == 2.0
    jittery = RetryPolicy(base_delay_s=1.0, jitter=0.2)
    assert all(1.0 <= jittery.delay_s(0) <= 1.2 for _ in range(50))


async def test_transient_failures_are_retried_until_the_attempts_run_out() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    policy = RetryPolicy(attempts=3, base_delay_s=0.1, sleep=sleep)
    flaky = Flaky([ConnectionError("a"), ConnectionError("b")])
    assert await retry_async(flaky, policy, retry_on=lambda e: isinstance(e, ConnectionError)) == "ok"
    assert flaky.calls == 3 and slept == [0.1, 0.2]
    worse = Flaky([ConnectionError("a")] * 3)
    with pytest.raises(ConnectionError):
        await retry_async(worse, policy, retry_on=lambda e: isinstance(e, ConnectionError))
    assert worse.calls == 3  # three tries in all, then the last failure as it came


async def test_other_failures_raise_at_once() -> None:
    flaky = Flaky([ValueError("bad request"), ConnectionError("x")])
    with pytest.raises(ValueError):
        await retry_async(flaky, RetryPolicy(), retry_on=lambda e: isinstance(e, ConnectionError))
    assert flaky.calls == 1
