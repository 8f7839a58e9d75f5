"""Cron fire times in a time zone, across daylight-saving changes."""

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from zerg.scheduler.cron import (
    CronError,
    due_between,
    fire_times,
    last_fire_before,
    next_fire_time,
    next_fire_times,
    shortest_gap,
)

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


def brute_last_fire_before(expression: str, timezone: str, before: datetime, days: int) -> datetime:
    """The latest fire before `before`, by walking every fire of the preceding `days`."""
    latest = None
    for fire in fire_times(expression, timezone, before - timedelta(days=days)):
        if fire >= before:
            assert latest is not None
            return latest
        latest = fire
    raise AssertionError("fire_times never ends")


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("30 2 * * *", 2),
        ("0 * * * *", 1),
        ("*/20 * * * *", 1),
        ("0,30 1-3 * * *", 2),
        ("59 1 * * *", 2),
        ("0 9 * * 1-5", 4),
    ],
)
def test_last_fire_before_agrees_with_walking_every_fire_across_clock_changes(
    expression: str, days: int
) -> None:
    # Around both changes in Paris (25 Oct, 29 Mar) and New York (1 Nov, 8 Mar) of 2026.
    changes = [
        ("Europe/Paris", datetime(2026, 10, 25, 1, tzinfo=UTC)),
        ("Europe/Paris", datetime(2026, 3, 29, 1, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),
    ]
    for timezone, change in changes:
        for minutes in range(-180, 240, 17):  # odd steps land on and between fire times
            before = change + timedelta(minutes=minutes)
            for at in (before, before.replace(minute=0), before.replace(minute=30)):
                expected = brute_last_fire_before(expression, timezone, at, days)
                assert last_fire_before(expression, timezone, at) == expected, (timezone, at)


def test_shortest_gap_is_the_closest_pair_of_upcoming_fires() -> None:
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    assert shortest_gap("*/5 * * * *", "UTC", at) == timedelta(minutes=5)
    # Monday 23:59, then Tuesday 00:00: a minute apart once a week.
    assert shortest_gap("0,59 0,23 * * 1,2", "UTC", at) == timedelta(minutes=1)
    assert shortest_gap("0 0 29 2 *", "UTC", at) == timedelta(days=4 * 365 + 1)
    # Every real hour, also in the hour that happens twice when Paris's clocks go back.
    autumn = paris(2026, 10, 24, 12, 0)
    assert shortest_gap("30 * * * *", "Europe/Paris", autumn) == timedelta(hours=1)


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30 2 *", "0 0 1 1 * 0 1999"])
def test_a_schedule_without_fires_is_a_cron_error_not_a_crash(expression: str) -> None:
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    with pytest.raises(CronError, match="does not fire in the next 10 years"):
        shortest_gap(expression, "UTC", at)
    with pytest.raises(CronError):
        next_fire_time(expression, "UTC", at)
    with pytest.raises(CronError):
        last_fire_before(expression, "UTC", at)


def test_an_expression_croniter_cannot_read_is_a_cron_error() -> None:
    with pytest.raises(CronError, match="cannot be read in UTC"):
        next_fire_time("every morning", "UTC", datetime(2026, 11, 25, tzinfo=UTC))
