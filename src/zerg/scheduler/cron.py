"""Cron fire times in an agent's time zone, daylight-saving changes included.

Pure functions of (expression, zone, time): no clock, no database, so they are easy to test
and every process computes the same fires.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

# How far ahead a schedule is checked: one with no fire in this span is refused as never firing.
HORIZON = timedelta(days=3653)
_HORIZON_TEXT = "the next 10 years"
# How many upcoming fires the shortest-gap check compares (within HORIZON).
GAP_SAMPLE = 300


class CronError(ValueError):
    """The schedule cannot give a fire time: it never fires, or croniter cannot compute it."""


def _hour_is_fixed(expression: str) -> bool:
    fields = expression.split()
    return len(fields) >= 2 and "*" not in fields[1]


def _croniter(expression: str, timezone: str, start: datetime) -> croniter:
    try:
        return croniter(expression, start.astimezone(ZoneInfo(timezone)))
    # A zone key naming a tzdata directory ("America") fails with an OSError.
    except (CroniterError, ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CronError(f"'{expression}' cannot be read in {timezone}: {exc}") from None


def _step(schedule: croniter, expression: str, *, back: bool = False) -> datetime:
    try:
        fire: datetime = schedule.get_prev(datetime) if back else schedule.get_next(datetime)
    # CroniterBadDateError: no matching date within croniter's search (e.g. '0 0 31 2 *');
    # OverflowError: the search ran past year 9999.
    except (CroniterError, OverflowError, ValueError) as exc:
        raise CronError(f"'{expression}' has no fire time: {exc}") from None
    return fire


def fire_times(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Fire times strictly after `after`, in UTC, endlessly (CronError if there is none).

    When clocks go back, a wall-clock time happens twice: like cron, a job at a fixed hour
    fires once (the first time), while a job whose hour is a wildcard fires every real hour.
    A time skipped when clocks go forward fires once, at the first valid moment after it.
    """
    fixed_hour = _hour_is_fixed(expression)
    schedule = _croniter(expression, timezone, after)
    previous_wall = after.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    while True:
        fire = _step(schedule, expression)
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
    """Fire times in (since, until]: what a dispatcher that last looked at `since` owes now.

    Walks every fire in the span, so callers keep the span short.
    """
    due: list[datetime] = []
    for fire in fire_times(expression, timezone, since):
        if fire > until:
            return due
        due.append(fire)
    raise AssertionError("fire_times never ends")


def last_fire_before(expression: str, timezone: str, before: datetime) -> datetime:
    """The latest fire strictly before `before`, as `fire_times` would have yielded it.

    Costs a few croniter steps however long ago it was. croniter's backward steps know
    nothing of the repeated-hour rule above, so this steps back three fires (at least one of
    which `fire_times` yields) and walks forward from there with `fire_times` itself.
    """
    schedule = _croniter(expression, timezone, before)
    _step(schedule, expression, back=True)
    _step(schedule, expression, back=True)
    latest = _step(schedule, expression, back=True).astimezone(UTC)
    for fire in fire_times(expression, timezone, latest):
        if fire >= before:
            return latest
        latest = fire
    raise AssertionError("fire_times never ends")


def shortest_gap(expression: str, timezone: str, after: datetime) -> timedelta | None:
    """The shortest time between two of the next GAP_SAMPLE fires within HORIZON of `after`.

    None when fewer than two fires fall in the horizon. CronError when none does: the
    schedule never fires (or not for years), which is as good as never for an agent.
    """
    end = after + HORIZON
    fires = fire_times(expression, timezone, after)
    gap: timedelta | None = None
    previous: datetime | None = None
    for _ in range(GAP_SAMPLE):
        try:
            fire = next(fires)
        except CronError:
            if previous is None:
                break
            return gap  # it stops firing: what fires before then is all there is to compare
        if fire > end:
            break
        if previous is not None and (gap is None or fire - previous < gap):
            gap = fire - previous
        previous = fire
    if previous is None:
        raise CronError(f"'{expression}' does not fire in {_HORIZON_TEXT} (time zone {timezone})")
    return gap
