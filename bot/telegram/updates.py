"""Incoming updates under bad conditions: unparseable updates skipped, duplicates dropped, a stalled loop seen.

PTB parses a whole `getUpdates` batch at once; one update it cannot parse makes `Bot.get_updates` raise, the
`Updater` logs the raw batch (user texts included) and fetches the same batch again, forever. `GuardedBot` parses
update by update instead: an unparseable one is logged once without its content, counted, and replaced by a bare
`Update(update_id)` that no handler matches, so the Updater's offset still moves past it.
"""

from __future__ import annotations

import datetime as dtm
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE, DefaultValue
from telegram._utils.types import JSONDict, ODVInput, TimePeriod
from telegram.ext import ExtBot

log = logging.getLogger(__name__)
RECENT_IDS = 4096  # webhook retries of one update come within minutes; a few thousand ids cover that
DEFAULT_STALL_S = 60.0


class Verdict(StrEnum):
    """What became of one incoming update."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"
    UNPARSEABLE = "unparseable"


def shape_of(data: object) -> str:
    """The keys of an update and of its payload object, without any value (values carry user text)."""
    if not isinstance(data, dict):
        return type(data).__name__
    parts = []
    for key, value in data.items():
        if key == "update_id":
            continue
        inner = ", ".join(sorted(str(k) for k in value)) if isinstance(value, dict) else type(value).__name__
        parts.append(f"{key}{{{inner}}}")
    return "; ".join(parts) or "no payload"


def update_id_of(data: object) -> int | None:
    """The update_id of a raw update, None when it has none usable."""
    if not isinstance(data, dict):
        return None
    value = data.get("update_id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


class UpdateGuard:
    """Parses raw updates one at a time, remembers recent update ids, counts skips, and watches the loop's pulse."""

    def __init__(self, *, stall_after_s: float = DEFAULT_STALL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self.clock = clock
        self.skipped: dict[Verdict, int] = {Verdict.DUPLICATE: 0, Verdict.UNPARSEABLE: 0}
        self._recent: OrderedDict[int, None] = OrderedDict()
        self.polling = False  # set while a polling loop is supposed to run
        self.last_round_at: float | None = None  # the last completed getUpdates round
        self.received = 0  # updates handed to PTB's queue
        self.started = 0  # updates PTB began processing
        self._waiting_since: float | None = None  # since when some update waits and none started

    def parse(self, data: object, bot: ExtBot[Any]) -> Update | None:
        """The Update of raw data, or None (logged once, without content, and counted) when PTB cannot parse it."""
        try:
            if not isinstance(data, dict):
                raise TypeError("an update must be a JSON object")
            update = Update.de_json(cast(JSONDict, data), bot)
            bot.insert_callback_data(update)
            return update
        except Exception as exc:
            # The exception text can quote values (user text), so only its type and the update's shape are logged.
            self.skipped[Verdict.UNPARSEABLE] += 1
            log.warning(
                "skipped telegram update %s that could not be parsed (%s); shape: %s",
                update_id_of(data),
                type(exc).__name__,
                shape_of(data),
            )
            return None

    def first_time(self, update_id: int) -> bool:
        """True the first time an update id is seen (a bounded memory of recent ids); counts the repeats."""
        if update_id in self._recent:
            self._recent.move_to_end(update_id)
            self.skipped[Verdict.DUPLICATE] += 1
            log.info("dropped a repeated telegram update %s", update_id)
            return False
        self._recent[update_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return True

    def round_done(self, count: int) -> None:
        """A getUpdates round completed with `count` updates."""
        self.last_round_at = self.clock()
        self.queued(count)

    def queued(self, count: int = 1) -> None:
        """`count` updates were handed to PTB's update queue."""
        if count and self.received == self.started:
            self._waiting_since = self.clock()
        self.received += count

    def processing_started(self) -> None:
        """PTB began processing one update."""
        self.started += 1
        self._waiting_since = self.clock() if self.received > self.started else None

    def stall_reason(self) -> str | None:
        """Why the update loop looks stalled, or None while it is healthy."""
        now = self.clock()
        if self.polling and self.last_round_at is not None and now - self.last_round_at > self.stall_after_s:
            return f"telegram polling has not completed a getUpdates round for {now - self.last_round_at:.0f} s"
        waiting = self.received - self.started
        if waiting > 0 and self._waiting_since is not None and now - self._waiting_since > self.stall_after_s:
            return f"{waiting} telegram updates wait and none started processing for {now - self._waiting_since:.0f} s"
        return None

    def collect(self) -> Iterable[Metric]:
        """Prometheus metrics: skipped updates by reason, seconds since the last getUpdates round."""
        skipped = CounterMetricFamily(
            "bastion_telegram_updates_skipped", "Telegram updates skipped, by reason", labels=["reason"]
        )
        for verdict, count in self.skipped.items():
            skipped.add_metric([verdict.value], count)
        yield skipped
        if self.polling and self.last_round_at is not None:
            yield GaugeMetricFamily(
                "bastion_telegram_seconds_since_poll",
                "Seconds since the last completed getUpdates round",
                value=self.clock() - self.last_round_at,
            )


class GuardedBot(ExtBot[Any]):
    """PTB's ExtBot whose `get_updates` skips updates it cannot parse instead of failing the whole batch."""

    def __init__(self, *args: Any, guard: UpdateGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    async def get_updates(
        self,
        offset: int | None = None,
        limit: int | None = None,
        timeout: TimePeriod | None = None,  # noqa: ASYNC109 (PTB's signature)
        allowed_updates: Sequence[str] | None = None,
        *,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
        api_kwargs: JSONDict | None = None,
    ) -> tuple[Update, ...]:
        """`Bot.get_updates` (same request and timeouts), parsing each update on its own."""
        data: JSONDict = {"timeout": timeout, "offset": offset, "limit": limit, "allowed_updates": allowed_updates}
        # The long poll's read timeout is the request's own plus the poll duration, as in Bot.get_updates.
        base = (read_timeout or 0) if not isinstance(read_timeout, DefaultValue) else self._request[0].read_timeout
        poll_s = timeout.total_seconds() if isinstance(timeout, dtm.timedelta) else float(timeout or 0)
        result = await self._post(
            "getUpdates",
            data,
            read_timeout=(base or 0) + poll_s,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
            api_kwargs=api_kwargs,
        )
        raw: list[Any] = list(result) if isinstance(result, list) else []
        updates: list[Update] = []
        for item in raw:
            update = self._guard.parse(item, self)
            if update is None:
                update_id = update_id_of(item)
                if update_id is None:
                    continue  # nothing to confirm it by; Telegram always sends one
                update = Update(update_id=update_id)  # matches no handler; keeps the offset moving past it
            updates.append(update)
        self._guard.round_done(len(updates))
        return tuple(updates)
