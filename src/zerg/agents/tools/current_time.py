"""The `current_time` tool: the time now in an IANA time zone, from `zerg.clock`."""

from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from zerg import clock


class CurrentTimeArgs(BaseModel):
    timezone: str = Field(
        default="UTC",
        description="IANA time zone name, e.g. 'UTC', 'Europe/Paris' or 'America/New_York'.",
    )


def current_time(timezone: str = "UTC") -> str:
    """The current time in `timezone`, e.g. `2024-03-31T03:30:00+02:00 Europe/Paris (CEST, Sunday)`.

    Raises `ToolException` for a zone that is not a known IANA name.
    """
    local = clock.now().astimezone(_zone(timezone))
    return f"{local.isoformat()} {timezone} ({local.tzname()}, {local:%A})"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # ValueError: a malformed key such as an absolute path; KeyError: a well-formed unknown one.
    except (ZoneInfoNotFoundError, ValueError):
        pass
    hint = _zone_names().get(name.strip().lower())
    suggestion = f"did you mean {hint!r}?" if hint else "use an IANA name such as 'Europe/Paris'"
    raise ToolException(f"Unknown time zone {name!r}; {suggestion}")


@cache
def _zone_names() -> dict[str, str]:
    """Known zone names by their lower-case spelling, to suggest the right case."""
    return {name.lower(): name for name in available_timezones()}


async def _current_time_inline(timezone: str = "UTC") -> str:
    # Cheaper than the hop to a worker thread a sync tool would take.
    return current_time(timezone)


def current_time_tool() -> BaseTool:
    return StructuredTool.from_function(
        func=current_time,
        coroutine=_current_time_inline,
        name="current_time",
        description=(
            "Get the current date and time in a time zone. Returns ISO 8601 with the UTC offset, "
            "the zone name, its abbreviation and the weekday. Defaults to UTC."
        ),
        args_schema=CurrentTimeArgs,
    )
