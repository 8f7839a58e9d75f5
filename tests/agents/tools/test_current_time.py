from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from langchain_core.tools import ToolException

from zerg import clock
from zerg.agents.tools import build_tools

pytestmark = pytest.mark.anyio

tool = build_tools(["current_time"])[0]


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    # 01:30 UTC on 2024-03-31: half an hour after Europe/Paris moved to summer time.
    clock.set_clock(lambda: datetime(2024, 3, 31, 1, 30, tzinfo=UTC))
    yield
    clock.set_clock(None)


async def test_defaults_to_utc() -> None:
    assert await tool.ainvoke({}) == "2024-03-31T01:30:00+00:00 UTC (UTC, Sunday)"


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("Europe/Paris", "2024-03-31T03:30:00+02:00 Europe/Paris (CEST, Sunday)"),
        ("America/New_York", "2024-03-30T21:30:00-04:00 America/New_York (EDT, Saturday)"),
        ("Asia/Kolkata", "2024-03-31T07:00:00+05:30 Asia/Kolkata (IST, Sunday)"),
    ],
)
async def test_reports_local_time_with_offset_and_zone(timezone: str, expected: str) -> None:
    assert await tool.ainvoke({"timezone": timezone}) == expected


async def test_follows_the_clock_across_a_dst_change() -> None:
    clock.set_clock(lambda: datetime(2024, 3, 31, 0, 30, tzinfo=UTC))
    before = await tool.ainvoke({"timezone": "Europe/Paris"})
    clock.set_clock(lambda: datetime(2024, 3, 31, 1, 0, tzinfo=UTC))
    after = await tool.ainvoke({"timezone": "Europe/Paris"})

    assert before == "2024-03-31T01:30:00+01:00 Europe/Paris (CET, Sunday)"
    assert after == "2024-03-31T03:00:00+02:00 Europe/Paris (CEST, Sunday)"


async def test_unknown_zone_is_a_tool_error() -> None:
    with pytest.raises(ToolException, match="Unknown time zone 'Mars/Olympus_Mons'; use an IANA"):
        await tool.ainvoke({"timezone": "Mars/Olympus_Mons"})


async def test_wrong_case_gets_a_suggestion() -> None:
    with pytest.raises(ToolException, match="did you mean 'Europe/Paris'"):
        await tool.ainvoke({"timezone": "europe/paris"})


@pytest.mark.parametrize("timezone", ["", "../../etc/passwd", "/etc/localtime", "Europe/"])
async def test_malformed_zone_is_a_tool_error(timezone: str) -> None:
    with pytest.raises(ToolException, match="Unknown time zone"):
        await tool.ainvoke({"timezone": timezone})
