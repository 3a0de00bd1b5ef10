"""The one retry helper: backoff arithmetic, which failures are retried, how many times."""

from __future__ import annotations

import pytest

from storage.retry import RetryPolicy, retry_async
from tests.bot.fakes import VirtualClock


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


class Slowdown(Exception):
    """A 429 that says how long to wait."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}")
        self.seconds = seconds


class VirtualTime(VirtualClock):
    """The tests' virtual clock, also remembering each sleep."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await super().sleep(seconds)


def _asked(exc: BaseException) -> float | None:
    return exc.seconds if isinstance(exc, Slowdown) else None


async def test_the_wait_the_server_asked_for_replaces_the_backoff() -> None:
    t = VirtualTime()
    policy = RetryPolicy(attempts=5, base_delay_s=0.1, sleep=t.sleep, clock=t)
    flaky = Flaky([Slowdown(3.0), ConnectionError("reset"), Slowdown(1.5)])
    result = await retry_async(
        flaky, policy, retry_on=lambda e: isinstance(e, Slowdown | ConnectionError), wait_of=_asked
    )
    assert result == "ok" and t.slept == [3.0, 0.2, 1.5]  # retry_after as given; the backoff in between


async def test_a_wait_past_the_budget_is_not_begun() -> None:
    t = VirtualTime()
    policy = RetryPolicy(attempts=10, budget_s=5.0, sleep=t.sleep, clock=t)
    flaky = Flaky([Slowdown(2.0), Slowdown(2.0), Slowdown(2.0), Slowdown(2.0)])
    with pytest.raises(Slowdown):
        await retry_async(flaky, policy, retry_on=lambda e: isinstance(e, Slowdown), wait_of=_asked)
    # 2 + 2 s fit in the 5 s budget; the third wait would end at 6 s, so the third 429 is raised instead.
    assert t.slept == [2.0, 2.0] and flaky.calls == 3
    one_try = RetryPolicy(attempts=1, sleep=t.sleep, clock=t)
    with pytest.raises(Slowdown):
        await retry_async(Flaky([Slowdown(0.1)]), one_try, retry_on=lambda e: True, wait_of=_asked)


async def test_what_names_the_call_in_a_warning_per_retry(caplog: pytest.LogCaptureFixture) -> None:
    t = VirtualTime()
    policy = RetryPolicy(attempts=3, base_delay_s=0.25, sleep=t.sleep, clock=t)
    flaky = Flaky([ConnectionError("reset"), ConnectionError("reset")])
    await retry_async(flaky, policy, retry_on=lambda e: True, what="bybit ticker")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "bybit ticker failed (ConnectionError: reset); retry 1 in 0.25s",
        "bybit ticker failed (ConnectionError: reset); retry 2 in 0.50s",
    ]
