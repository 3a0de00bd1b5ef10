"""Delivery schedules of subscriptions: every N hours or a cron expression, in the subscriber's time zone,
with quiet hours. A slot is a schedule's fire time; the latest slot not yet delivered is the one due."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

EVERY_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)  # divisors of a day: the slots fall on the same local hours daily
LOOKBACK = timedelta(days=8)  # the oldest slot a check looks for (a weekly cron has one within it)
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


class ScheduleError(ValueError):
    """A schedule, time zone or quiet-hours window that cannot be used; the message says what is wrong."""


_DOW = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_trigger(expression: str, zone: tzinfo | str) -> CronTrigger:
    """A crontab expression as APScheduler's trigger, with crontab's day-of-week numbers (0 and 7 = Sunday,
    1 = Monday): APScheduler 3 counts 0 = Monday, so the numbers are turned into day names first."""
    fields = expression.split()
    if len(fields) == 5 and "/" not in fields[4]:
        fields[4] = ",".join(_days(item) for item in fields[4].split(","))
    return CronTrigger.from_crontab(" ".join(fields), timezone=zone)


def _days(item: str) -> str:
    """One crontab day-of-week item as names; a numeric range is listed day by day (0-6 would not wrap)."""
    m = re.fullmatch(r"(\d)(?:-(\d))?", item)
    if m is None:
        return item  # names and "*" mean the same to both
    start, end = int(m[1]), int(m[2] or m[1])
    if start > 7 or end > 7 or start > end:
        return item  # left for APScheduler to refuse
    return ",".join(_DOW[d] for d in range(start, end + 1))


@lru_cache(maxsize=1024)
def _trigger(expression: str, tz: str) -> CronTrigger:
    # Compiling a cron expression costs about a millisecond; a thousand subscriptions share a few schedules.
    try:
        return crontab_trigger(expression, parse_timezone(tz))
    except ValueError as exc:
        if isinstance(exc, ScheduleError):
            raise
        raise ScheduleError(f"Not a cron expression ({exc}); e.g. '0 8 * * *' for 08:00 daily.") from None


def parse_timezone(name: str) -> tzinfo:
    """An IANA zone (Asia/Tokyo) or a fixed offset (UTC+9, +09:00); ScheduleError otherwise."""
    text = name.strip()
    if text.upper() in ("UTC", "GMT", "Z"):
        return UTC
    m = _OFFSET.match(text)
    if m:
        hours, minutes = int(m[2]), int(m[3] or 0)
        if hours > 14 or minutes >= 60:
            raise ScheduleError(f"{name!r} is not a UTC offset (UTC-12 to UTC+14).")
        sign = 1 if m[1] == "+" else -1
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"Unknown time zone {name!r}; use a name like Asia/Tokyo or an offset like UTC+9."
        raise ScheduleError(msg) from None


@dataclass(frozen=True)
class Schedule:
    """When a subscription fires: `every_hours` (on the local hours 0, N, 2N, ...) or a `cron` expression."""

    every_hours: int | None = None
    cron: str | None = None
    tz: str = "UTC"
    quiet: tuple[int, int] | None = None  # [start, end) local hours; start > end wraps midnight

    def __post_init__(self) -> None:
        if (self.every_hours is None) == (self.cron is None):
            raise ScheduleError("A schedule is either every N hours or a cron expression.")
        if self.every_hours is not None and self.every_hours not in EVERY_HOURS:
            raise ScheduleError(
                f"Every {self.every_hours}h does not divide a day; use one of "
                f"{', '.join(f'{h}h' for h in EVERY_HOURS)} or a cron expression."
            )
        if self.quiet is not None:
            start, end = self.quiet
            if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
                raise ScheduleError("Quiet hours are two different hours 0-23, like 22-07.")
        self.trigger()  # validates the cron expression and the zone

    @property
    def zone(self) -> tzinfo:
        """The subscriber's time zone."""
        return parse_timezone(self.tz)

    @property
    def expression(self) -> str:
        """The cron expression of the schedule."""
        if self.cron is not None:
            return self.cron
        return "0 0 * * *" if self.every_hours == 24 else f"0 */{self.every_hours} * * *"

    def trigger(self) -> CronTrigger:
        """APScheduler's cron trigger in the subscriber's zone (it handles DST)."""
        return _trigger(self.expression, self.tz)

    def latest_slot(self, now: datetime, after: datetime | None = None) -> datetime | None:
        """The last fire time <= `now` (UTC), later than `after` when given; None when there is none."""
        trigger = self.trigger()
        floor = now - LOOKBACK
        if after is not None and after > floor:
            floor = after
        latest: datetime | None = None
        prev: datetime | None = None
        t = trigger.get_next_fire_time(None, floor)
        while t is not None and t <= now:
            if after is None or t > after:
                latest = t
            prev, t = t, trigger.get_next_fire_time(t, t + timedelta(seconds=1))
            if prev == t:
                break
        return None if latest is None else latest.astimezone(UTC)

    def next_slot(self, now: datetime) -> datetime | None:
        """The first fire time after `now` (UTC)."""
        t = self.trigger().get_next_fire_time(None, now + timedelta(seconds=1))
        return None if t is None else t.astimezone(UTC)

    def quiet_at(self, now: datetime) -> bool:
        """True when `now` falls in the quiet hours in the subscriber's zone."""
        if self.quiet is None:
            return False
        hour = now.astimezone(self.zone).hour
        start, end = self.quiet
        return start <= hour < end if start < end else hour >= start or hour < end

    def describe(self) -> str:
        """'every 4h (Asia/Tokyo), quiet 22-07' for people."""
        base = f"every {self.every_hours}h" if self.every_hours is not None else f"cron '{self.cron}'"
        out = f"{base} ({self.tz})"
        if self.quiet is not None:
            out += f", quiet {self.quiet[0]:02d}-{self.quiet[1]:02d}"
        return out
