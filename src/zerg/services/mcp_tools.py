"""MCP tools of agents: who may configure which servers, and what a server's tools are."""

from typing import Any

from zerg.agents.catalog import BUILTIN_TOOL_NAMES
from zerg.agents.tools import HttpGetPolicy, McpPolicy
from zerg.agents.tools.mcp import ServerTools, describe_servers
from zerg.db import Database
from zerg.errors import InvalidInput
from zerg.services.ownership import visible_agent
from zerg.services.users import Actor
from zerg.settings import Settings


def mcp_policy(settings: Settings) -> McpPolicy:
    """What the operator lets MCP servers reach and run."""
    http = HttpGetPolicy(allowed_networks=settings.allowed_networks)
    return McpPolicy(http=http, stdio=settings.mcp_stdio != "off")


def check_stdio_servers(
    config: dict[str, Any], stored: dict[str, Any] | None, *, actor: Actor, settings: Settings
) -> None:
    """Refuse stdio servers the actor may not add: they run commands on the server's machine.

    Servers already stored unchanged pass, so that a user may edit the rest of an agent an
    admin gave a stdio server.
    """
    before = (stored or {}).get("mcp_servers") or {}
    added = [
        name
        for name, server in (config.get("mcp_servers") or {}).items()
        if isinstance(server, dict)
        and server.get("transport") == "stdio"
        and before.get(name) != server
    ]
    if not added:
        return
    if settings.mcp_stdio == "off":
        reason = "stdio MCP servers are turned off on this server (ZERG_MCP_STDIO=off)"
    elif settings.mcp_stdio == "admins" and not actor.is_admin:
        reason = (
            "only admins may add stdio MCP servers, which run commands on the server's machine "
            "(ZERG_MCP_STDIO=admins); use a streamable_http server, or ask an admin"
        )
    else:
        return
    names = ", ".join(f"'{name}'" for name in added)
    raise InvalidInput(f"config.mcp_servers {names}: {reason}", code="mcp_stdio_not_allowed")


async def agent_mcp_tools(
    agent_id: int, *, actor: Actor, database: Database, settings: Settings
) -> list[ServerTools]:
    """Each MCP server of the agent with the tools it gets from it, or why it failed (no
    database connection is held while the servers are asked)."""
    with database.session() as session:
        agent = visible_agent(agent_id, actor, session=session)
        servers = (agent.config or {}).get("mcp_servers")
    if not servers:
        return []
    return await describe_servers(servers, mcp_policy(settings), BUILTIN_TOOL_NAMES)
