"""Telegram's flood gate on a virtual clock: retry_after honoured per chat, within the policy's tries and budget."""

from __future__ import annotations

import datetime as dtm

import pytest
from telegram.error import RetryAfter

from bot.telegram.replier import FloodGate
from storage.retry import RetryPolicy
from tests.bot.fakes import VirtualClock


class Telegram:
    """Answers 429 with the scripted retry_after values, then 'ok'; records when each call arrived."""

    def __init__(self, t: VirtualClock, waits: list[int]) -> None:
        self.t, self.waits = t, waits
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(self.t.now)
        if self.waits:
            raise RetryAfter(dtm.timedelta(seconds=self.waits.pop(0)))
        return "ok"


def gate(t: VirtualClock, **policy: float) -> FloodGate:
    return FloodGate(RetryPolicy(**{"attempts": 5, "budget_s": 60.0, **policy}, sleep=t.sleep, clock=t))  # type: ignore[arg-type]


async def test_each_retry_after_is_waited_out_then_the_call_goes_through() -> None:
    t = VirtualClock()
    api = Telegram(t, [3, 1, 2])
    assert await gate(t)(42, api) == "ok"
    assert api.calls == [0.0, 3.0, 4.0, 6.0]


async def test_the_attempts_and_the_budget_bound_the_wait() -> None:
    t = VirtualClock()
    api = Telegram(t, [1] * 10)
    with pytest.raises(RetryAfter):
        await gate(t, attempts=3)(42, api)
    assert len(api.calls) == 3  # three tries in all, the last 429 raised
    t2 = VirtualClock()
    api2 = Telegram(t2, [20, 20, 30])
    with pytest.raises(RetryAfter):
        await gate(t2)(42, api2)
    # 20 + 20 s fit in a minute; the third 429's 30 s more would end at 70 s, so it is raised and nothing more sent.
    assert api2.calls == [0.0, 20.0, 40.0]


async def test_a_chat_told_to_wait_holds_back_its_other_calls_but_not_other_chats() -> None:
    t = VirtualClock()
    g = gate(t, budget_s=10.0)
    with pytest.raises(RetryAfter):
        await g(42, Telegram(t, [30]))  # the chat must wait 30 s: beyond the budget
    apology = Telegram(t, [])
    with pytest.raises(RetryAfter) as held:
        await g(42, apology)
    assert apology.calls == [] and held.value.retry_after == dtm.timedelta(seconds=30)  # not sent at all
    other = Telegram(t, [])
    assert await g(43, other) == "ok" and other.calls == [0.0]
