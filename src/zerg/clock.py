"""Time from one place, so tests can freeze and advance it."""

from collections.abc import Callable
from datetime import UTC, datetime


def _system_now() -> datetime:
    return datetime.now(UTC)


_now: Callable[[], datetime] = _system_now


def now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return _now()


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Replace the time source (tests); `None` restores the system clock."""
    global _now
    _now = source or _system_now
