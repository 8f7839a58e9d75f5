"""Cron fire times in a time zone, across daylight-saving changes."""

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from zerg.scheduler.cron import due_between, next_fire_time, next_fire_times

PARIS = ZoneInfo("Europe/Paris")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)  # type: ignore[misc]


def local(times: list[datetime]) -> list[str]:
    return [t.astimezone(PARIS).isoformat() for t in times]


def test_fire_times_are_utc_and_follow_the_zone() -> None:
    times = next_fire_times("0 9 * * 1-5", "Europe/Paris", paris(2026, 11, 27, 12, 0), 3)

    assert all(t.tzinfo == UTC for t in times)
    # Friday noon -> Monday, Tuesday, Wednesday at 09:00 Paris (08:00 UTC in winter).
    assert [t.isoformat() for t in times] == [
        "2026-11-30T08:00:00+00:00",
        "2026-12-01T08:00:00+00:00",
        "2026-12-02T08:00:00+00:00",
    ]


def test_a_daily_job_in_the_repeated_hour_fires_once_when_clocks_go_back() -> None:
    times = next_fire_times("30 2 * * *", "Europe/Paris", paris(2026, 10, 24, 12, 0), 3)

    assert local(times) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]


def test_an_hourly_job_fires_every_real_hour_when_clocks_go_back() -> None:
    times = next_fire_times("0 * * * *", "Europe/Paris", paris(2026, 10, 25, 0, 30), 4)

    assert local(times) == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
    assert gaps == {3600.0}


def test_a_time_skipped_when_clocks_go_forward_fires_once() -> None:
    times = next_fire_times("30 2 * * *", "Europe/Paris", paris(2026, 3, 28, 12, 0), 2)

    assert len(times) == 2
    assert times[0].astimezone(PARIS).date().isoformat() == "2026-03-29"
    assert times[1].astimezone(PARIS).isoformat() == "2026-03-30T02:30:00+02:00"


def test_due_between_lists_every_fire_in_the_window_once() -> None:
    since = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    due = due_between("*/15 * * * *", "UTC", since, datetime(2026, 11, 25, 11, 0, tzinfo=UTC))

    assert [t.strftime("%H:%M") for t in due] == ["10:15", "10:30", "10:45", "11:00"]
    assert due_between("*/15 * * * *", "UTC", since, since) == []


def test_next_fire_time_is_strictly_after() -> None:
    at = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    assert next_fire_time("0 9 * * *", "UTC", at) == datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
