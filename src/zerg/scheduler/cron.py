"""Cron fire times in an agent's time zone, daylight-saving changes included.

Pure functions of (expression, zone, time): no clock, no database, so they are easy to test
and every process computes the same fires.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from croniter import croniter


def _hour_is_fixed(expression: str) -> bool:
    fields = expression.split()
    return len(fields) >= 2 and "*" not in fields[1]


def fire_times(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after `after`, in UTC, endlessly.

    When clocks go back, a wall-clock time happens twice: like cron, a job at a fixed hour
    fires once (the first time), while a job whose hour is a wildcard fires every real hour.
    A time skipped when clocks go forward fires once, at the first valid moment after it.
    """
    zone = ZoneInfo(timezone)
    fixed_hour = _hour_is_fixed(expression)
    start = after.astimezone(zone)
    schedule = croniter(expression, start)
    previous_wall = start.replace(tzinfo=None)
    while True:
        fire: datetime = schedule.get_next(datetime)
        wall = fire.replace(tzinfo=None)
        if fixed_hour and wall == previous_wall:
            continue  # the repeated hour after clocks went back
        previous_wall = wall
        yield fire.astimezone(UTC)


def next_fire_times(expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after`, in UTC."""
    times = fire_times(expression, timezone, after)
    return [next(times) for _ in range(count)]


def next_fire_time(expression: str, timezone: str, after: datetime) -> datetime:
    return next(fire_times(expression, timezone, after))


def due_between(expression: str, timezone: str, since: datetime, until: datetime) -> list[datetime]:
    """Fire times in (since, until]: what a dispatcher that last looked at `since` owes now."""
    due: list[datetime] = []
    for fire in fire_times(expression, timezone, since):
        if fire > until:
            return due
        due.append(fire)
    raise AssertionError("fire_times never ends")
