"""Subscription schedules: local hours in the subscriber's zone, cron, DST, quiet hours, refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.reports.schedule import Schedule, ScheduleError, parse_timezone


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_4h_falls_on_the_subscribers_local_hours() -> None:
    tokyo = Schedule(every_hours=4, tz="Asia/Tokyo")
    # 10:30 UTC is 19:30 in Tokyo: the latest local slot is 16:00 there, 07:00 UTC.
    assert tokyo.latest_slot(at("2026-03-01T10:30")) == at("2026-03-01T07:00")
    assert tokyo.next_slot(at("2026-03-01T10:30")) == at("2026-03-01T11:00")
    utc = Schedule(every_hours=4)
    assert utc.latest_slot(at("2026-03-01T10:30")) == at("2026-03-01T08:00")


def test_cron_in_utc_plus_9_and_after() -> None:
    s = Schedule(cron="0 8 * * *", tz="UTC+9")
    assert parse_timezone("UTC+9").utcoffset(None).total_seconds() == 9 * 3600  # type: ignore[union-attr]
    assert s.latest_slot(at("2026-03-01T22:59")) == at("2026-02-28T23:00")
    assert s.latest_slot(at("2026-03-01T23:00")) == at("2026-03-01T23:00")
    # Only slots later than the one already delivered count.
    assert s.latest_slot(at("2026-03-01T22:59"), after=at("2026-02-28T23:00")) is None
    assert s.latest_slot(at("2026-03-01T23:00"), after=at("2026-02-28T23:00")) == at("2026-03-01T23:00")


def test_crontab_day_numbers_mean_what_crontab_says() -> None:
    # 2026-03-02 is a Monday: crontab's 1 (APScheduler alone would read it as Tuesday).
    assert Schedule(cron="0 8 * * 1").latest_slot(at("2026-03-04T12:00")) == at("2026-03-02T08:00")
    assert Schedule(cron="0 8 * * 0").latest_slot(at("2026-03-04T12:00")) == at("2026-03-01T08:00")
    weekdays = Schedule(cron="0 8 * * 1-5")
    assert weekdays.latest_slot(at("2026-03-08T12:00")) == at("2026-03-06T08:00")  # Sunday -> Friday's
    assert Schedule(cron="0 8 * * 0-6").latest_slot(at("2026-03-08T12:00")) == at("2026-03-08T08:00")


def test_daylight_saving_time_moves_the_utc_slot() -> None:
    berlin = Schedule(cron="0 8 * * *", tz="Europe/Berlin")
    assert berlin.latest_slot(at("2026-01-10T12:00")) == at("2026-01-10T07:00")
    assert berlin.latest_slot(at("2026-07-10T12:00")) == at("2026-07-10T06:00")


def test_quiet_hours_wrap_midnight_in_local_time() -> None:
    s = Schedule(every_hours=4, tz="UTC+2", quiet=(22, 7))
    assert s.quiet_at(at("2026-03-01T20:00"))  # 22:00 local
    assert s.quiet_at(at("2026-03-02T04:59"))  # 06:59 local
    assert not s.quiet_at(at("2026-03-02T05:00"))  # 07:00 local
    assert not s.quiet_at(at("2026-03-01T19:59"))
    day = Schedule(every_hours=1, quiet=(12, 14))
    assert day.quiet_at(at("2026-03-01T13:00")) and not day.quiet_at(at("2026-03-01T14:00"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_hours": 5}, "does not divide a day"),
        ({"cron": "61 * * * *"}, "Not a cron expression"),
        ({"cron": "0 8 * *"}, "Not a cron expression"),
        ({"every_hours": 4, "tz": "Mars/Olympus"}, "Unknown time zone"),
        ({"every_hours": 4, "tz": "UTC+15"}, "not a UTC offset"),
        ({"every_hours": 4, "quiet": (5, 5)}, "Quiet hours"),
        ({"every_hours": 4, "quiet": (22, 24)}, "Quiet hours"),
        ({}, "either every N hours or a cron"),
        ({"every_hours": 4, "cron": "0 8 * * *"}, "either every N hours or a cron"),
    ],
)
def test_unusable_schedules_are_refused_with_a_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule(**kwargs)  # type: ignore[arg-type]


def test_describe() -> None:
    assert Schedule(every_hours=4, tz="Asia/Tokyo", quiet=(22, 7)).describe() == "every 4h (Asia/Tokyo), quiet 22-07"
    assert Schedule(cron="0 8 * * 1").describe() == "cron '0 8 * * 1' (UTC)"
