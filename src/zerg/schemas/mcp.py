"""MCP server shapes: the `mcp_servers` of an agent's config, each checked and bounded."""

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_MCP_SERVERS = 10
MAX_ARGS = 100
MAX_ENTRIES = 50  # env variables, or headers
MAX_VALUE_CHARS = 4000
MAX_URL_CHARS = 2000
TRANSPORTS = ("stdio", "streamable_http")

# Short and plain, so that `server__tool` (a tool's name on a clash) stays a valid tool name.
_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}")
_URL = re.compile(r"https?://[^/\s?#@]+(/\S*)?")

Value = Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)]


class StdioServer(BaseModel):
    """A command Zerg starts on its own machine, speaking MCP over stdin and stdout."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    transport: Literal["stdio"]
    command: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    args: Annotated[list[Value], Field(max_length=MAX_ARGS)] = []
    env: Annotated[dict[str, Value], Field(max_length=MAX_ENTRIES)] | None = None


class HttpServer(BaseModel):
    """An MCP server at a streamable-HTTP URL, reached through the network guard."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    transport: Literal["streamable_http"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_CHARS)]
    headers: Annotated[dict[str, Value], Field(max_length=MAX_ENTRIES)] = {}


McpServer = StdioServer | HttpServer


def parse_mcp_servers(value: Any) -> dict[str, McpServer]:
    """`mcp_servers` as typed servers; `ValueError` with one line per problem otherwise."""
    if not isinstance(value, dict):
        raise ValueError('must be an object of servers by name, e.g. {"files": {...}}')
    if len(value) > MAX_MCP_SERVERS:
        raise ValueError(f"at most {MAX_MCP_SERVERS} servers, not {len(value)}")
    servers: dict[str, McpServer] = {}
    problems: list[str] = []
    for name, server in value.items():
        try:
            servers[name] = _parse_server(name, server)
        except ValueError as exc:
            problems.append(f"server {name!r}: {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return servers


def _parse_server(name: str, server: Any) -> McpServer:
    if not _SERVER_NAME.fullmatch(name):
        raise ValueError(
            "a server's name must be 1-32 letters, digits, '_' or '-', starting with a letter "
            "or digit"
        )
    if not isinstance(server, dict) or server.get("transport") not in TRANSPORTS:
        raise ValueError(
            'needs "transport": "stdio" (with "command", "args", "env") or '
            '"streamable_http" (with "url", "headers")'
        )
    model = StdioServer if server["transport"] == "stdio" else HttpServer
    try:
        parsed = model.model_validate(server)
    except ValidationError as exc:
        raise ValueError("; ".join(_describe(e["loc"], e["msg"]) for e in exc.errors())) from None
    _check_values(parsed)
    return parsed


def _describe(location: tuple[int | str, ...], message: str) -> str:
    return ".".join(map(str, location)) + ": " + message.removeprefix("Value error, ")


def _check_values(server: McpServer) -> None:
    if isinstance(server, StdioServer):
        if "\0" in server.command or any("\0" in arg for arg in server.args):
            raise ValueError("command and args must not contain NUL characters")
        for key, value in (server.env or {}).items():
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"env: {key!r} is not a valid environment variable name")
            if "\0" in value or "${" in value:
                # The adapter would fill ${VAR} from Zerg's own environment (its API keys).
                raise ValueError(f"env.{key}: must not contain NUL characters or '${{'")
        return
    if not _URL.fullmatch(server.url):
        raise ValueError("url: must be an http:// or https:// URL with a host and no user info")
    for key, value in server.headers.items():
        if not _HEADER_NAME.fullmatch(key):
            raise ValueError(f"headers: {key!r} is not a valid header name")
        if any(char in value for char in "\r\n\0"):
            raise ValueError(f"headers.{key}: must not contain line breaks or NUL characters")


class McpToolRead(BaseModel):
    name: str  # as the agent's model sees it (`server__tool` on a clash)
    description: str


class McpServerRead(BaseModel):
    """One MCP server of an agent: its tools, or why they could not be listed."""

    name: str
    transport: str
    tools: list[McpToolRead]
    error: str | None
