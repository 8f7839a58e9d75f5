"""MCP tools below the API: naming on clashes, the operator's stdio switch, the network guard's
transport, and a resumed run that answers a pending MCP tool call."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from langchain_core.tools import BaseTool, StructuredTool
from sqlalchemy import select

from tests.api.helpers import Rows
from tests.api.test_mcp_tools import stdio
from zerg.agents.runner import AgentRunner
from zerg.agents.tools import BUILTIN_TOOLS, HttpGetPolicy, McpServerError, build_tools
from zerg.agents.tools.mcp import (
    GuardedTransport,
    McpListing,
    McpPolicy,
    McpToolset,
    forget_listings,
    mcp_toolset,
)
from zerg.agents.tools.ssrf import RefusedURL
from zerg.db import Database
from zerg.models import Message
from zerg.services.threads import ThreadService
from zerg.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _fresh_listings() -> Iterator[None]:
    forget_listings()
    yield
    forget_listings()


def fake_tool(name: str) -> BaseTool:
    async def call() -> str:
        return name

    return StructuredTool.from_function(coroutine=call, name=name, description=f"does {name}")


def toolset(**servers: list[str]) -> McpToolset:
    listings = tuple(
        McpListing(server, "stdio", tuple(map(fake_tool, names)), serial)
        for serial, (server, names) in enumerate(servers.items())
    )
    return McpToolset(tuple(listing.serial for listing in listings), listings)


async def test_names_clashing_with_builtins_or_other_servers_are_prefixed() -> None:
    tools = toolset(a=["calculator", "search", "only_a"], b=["search", "odd.name"])

    names = [tool.name for tool in build_tools(["calculator"], mcp=tools)]

    assert names == ["calculator", "a__calculator", "a__search", "only_a", "b__search", "odd_name"]


async def test_a_name_taken_after_prefixing_is_left_out() -> None:
    tools = toolset(a=["x", "b__x"], b=["x"])

    assert [tool.name for tool in tools.tools(BUILTIN_TOOLS)] == ["a__x", "b__x"]


async def test_equal_listings_make_equal_toolsets() -> None:
    policy = McpPolicy()
    first = await mcp_toolset({"s": stdio()}, policy)
    again = await mcp_toolset({"s": stdio()}, policy)
    other = await mcp_toolset({"s": stdio(X="1")}, policy)

    assert first is not None and first == again and hash(first) == hash(again)
    assert first != other
    assert [tool.name for tool in first.tools(BUILTIN_TOOLS)] == ["greet", "explode"]


async def test_an_old_listing_is_listed_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("zerg.agents.tools.mcp.LISTING_TTL_S", 0.0)
    first = await mcp_toolset({"s": stdio()}, McpPolicy())
    again = await mcp_toolset({"s": stdio()}, McpPolicy())

    assert first is not None and again is not None and first != again


async def test_stdio_servers_turned_off_fail_before_starting() -> None:
    with pytest.raises(McpServerError, match=r"MCP server 's' did not start: .*ZERG_MCP_STDIO"):
        await mcp_toolset({"s": stdio()}, McpPolicy(stdio=False))


async def test_invalid_stored_servers_fail_the_run() -> None:
    with pytest.raises(McpServerError, match="the agent's mcp_servers are invalid"):
        await mcp_toolset({"s": {"transport": "websocket"}}, McpPolicy())


async def test_the_transport_vets_every_request() -> None:
    async with httpx.AsyncClient(transport=GuardedTransport(HttpGetPolicy())) as client:
        with pytest.raises(RefusedURL, match=r"169\.254\.169\.254 is a link-local"):
            await client.get("http://169.254.169.254/latest/meta-data/")
        with pytest.raises(RefusedURL, match="metadata service"):
            await client.get("http://metadata.google.internal/")


@dataclass
class Snapshot:
    model: str
    config: dict[str, Any] | None
    tools: list[str] | None = field(default_factory=list)


async def test_a_resumed_run_answers_its_pending_mcp_call(
    database: Database, settings: Settings
) -> None:
    config = {"mcp_servers": {"local": stdio()}}
    rows = Rows(database)
    agent_id = rows.agent(model="scripted:demo", config=config)
    thread_id = rows.thread(agent_id)
    rows.message(thread_id, role="system", content="")
    rows.message(thread_id, role="user", content="Greet Bo.", processed=False)
    call = {"id": "c1", "name": "greet", "args": {"name": "Bo"}}
    rows.message(thread_id, role="assistant", content="", tool_calls=[call])
    with database.transaction() as db:
        thread = ThreadService.read_thread(db, thread_id)

    await AgentRunner(Snapshot("scripted:demo", config), settings=settings).run_thread(
        database, thread
    )

    with database.session() as session:
        stored = session.scalars(
            select(Message).where(Message.thread_id == thread_id).order_by(Message.id)
        ).all()
        shown = [(m.role, m.name, m.content) for m in stored]
    assert shown[3:] == [
        ("tool", "greet", "Hello, Bo!"),
        ("assistant", None, "The greet tool says: Hello, Bo!"),
    ]


async def test_a_runner_with_stdio_off_fails_naming_the_server(
    database: Database, settings: Settings
) -> None:
    rows = Rows(database)
    thread_id = rows.thread(rows.agent())
    rows.message(thread_id, role="user", content="Hi", processed=False)
    with database.transaction() as db:
        thread = ThreadService.read_thread(db, thread_id)
    off = settings.model_copy(update={"mcp_stdio": "off"})
    snapshot = Snapshot("scripted:demo", {"mcp_servers": {"files": stdio()}})

    with pytest.raises(McpServerError, match="MCP server 'files' did not start"):
        await AgentRunner(snapshot, settings=off).run_thread(database, thread)


async def test_a_resumed_run_answers_built_in_and_unknown_calls_too(
    database: Database, settings: Settings
) -> None:
    rows = Rows(database)
    thread_id = rows.thread(rows.agent())
    rows.message(thread_id, role="user", content="Sum.", processed=False)
    calls = [
        {"id": "c1", "name": "calculator", "args": {"expression": "6 * 7"}},
        {"id": "c2", "name": "gone", "args": {}},
    ]
    rows.message(thread_id, role="assistant", content="", tool_calls=calls)
    with database.transaction() as db:
        thread = ThreadService.read_thread(db, thread_id)

    snapshot = Snapshot("scripted:demo", {}, ["calculator"])
    await AgentRunner(snapshot, settings=settings).run_thread(database, thread)

    with database.session() as session:
        tools = session.scalars(
            select(Message).where(Message.thread_id == thread_id, Message.role == "tool")
        ).all()
        answers = {m.tool_call_id: (m.content, m.meta["status"]) for m in tools}
    assert answers["c1"] == ("42", "success")
    content, status = answers["c2"]
    assert status == "error" and "gone is not one of the agent's tools" in content
