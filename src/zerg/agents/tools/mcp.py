"""MCP tools: the tools of the MCP servers an agent's config lists, next to the built-in ones.

Each server's tool listing is cached, keyed by the server's config (and the network policy), so
a run lists a server only when its config changed or its listing is older than LISTING_TTL_S.
Every tool call opens its own session (a stdio server's command starts for it), so a cached
listing holds no connection, serves any event loop, and a run resumed after a crash needs
nothing but the listing. A server that does not start or answer while being listed raises
`McpServerError` naming it; a tool call that fails raises `ToolException`, which the agent loop
hands back to the model as a tool message.

HTTP servers are reached through the network guard of `http_get` (every request and redirect
vetted, then sent to the vetted address). `langchain_mcp_adapters` and `mcp` are imported only
when an agent has MCP servers: they take a while to load.
"""

import asyncio
import itertools
import json
import logging
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool, ToolException

from zerg.agents.tools.http_get import HttpGetPolicy
from zerg.agents.tools.ssrf import RefusedURL, vet_url
from zerg.schemas.mcp import HttpServer, McpServer, StdioServer, parse_mcp_servers

logger = logging.getLogger(__name__)

LIST_TIMEOUT_S = 30.0
LISTING_TTL_S = 600.0
MAX_LISTINGS = 128  # cached server listings, across agents
MAX_OUTPUT_CHARS = 100_000  # of one tool call's output, like http_get's body
MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # of one HTTP response from an MCP server
HTTP_TIMEOUT_S = 30.0
CLASH_SEPARATOR = "__"
_INVALID_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_MAX_TOOL_NAME = 64  # what OpenAI accepts


class McpServerError(Exception):
    """An MCP server of the agent did not start or answer; the message names it and why."""


@dataclass(frozen=True)
class McpPolicy:
    """What the operator allows: the network guard for HTTP servers, and stdio servers at all."""

    http: HttpGetPolicy = field(default_factory=HttpGetPolicy)
    stdio: bool = True


@dataclass(frozen=True)
class McpListing:
    """One server's tools as listed (named as the server names them)."""

    server: str
    transport: str
    tools: tuple[BaseTool, ...]
    serial: int  # unique per listing: equal serials, same tools


@dataclass(frozen=True)
class McpToolset:
    """The listings of one agent's servers. Equal toolsets hold the same listings, so a
    toolset can key a cache of compiled graphs."""

    key: tuple[int, ...]
    listings: tuple[McpListing, ...] = field(compare=False)

    def tools(self, builtin_names: Collection[str]) -> list[BaseTool]:
        """Every server's tools, named for the model: a tool keeps its name unless a built-in
        tool or another server's tool has it too; then each is called `server__tool`."""
        named = [
            (listing.server, tool, _valid_name(tool.name))
            for listing in self.listings
            for tool in listing.tools
        ]
        servers_of = Counter(name for _server, name in {(s, n) for s, _tool, n in named})
        tools: list[BaseTool] = []
        seen: set[str] = set(builtin_names)
        for server, tool, name in named:
            if name in builtin_names or servers_of[name] > 1:
                name = _valid_name(f"{server}{CLASH_SEPARATOR}{name}")
            if name in seen:  # e.g. a server's own tool named like another's prefixed one
                logger.warning("MCP server %r: tool %r left out, its name is taken", server, name)
                continue
            seen.add(name)
            tools.append(_guarded_tool(tool, server, name))
        return tools


@dataclass
class _Cached:
    listing: McpListing
    expires: float


# Shared by the event loops that execute runs (one per thread), hence the lock.
_CACHE: OrderedDict[tuple[Any, ...], _Cached] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_serials = itertools.count(1)


async def mcp_toolset(servers: Any, policy: McpPolicy) -> McpToolset | None:
    """The tools of the agent's `mcp_servers` (None when it has none), listing each server
    whose listing is not cached; raises `McpServerError` naming a server that fails."""
    if not servers:
        return None
    try:
        parsed = parse_mcp_servers(servers)
    except ValueError as exc:
        raise McpServerError(f"the agent's mcp_servers are invalid: {exc}") from None
    try:
        async with asyncio.TaskGroup() as group:  # the first failure stops the others
            tasks = [group.create_task(_listing(n, s, policy)) for n, s in parsed.items()]
    except ExceptionGroup as failed:
        first = _first_error(failed)
        if isinstance(first, McpServerError):
            raise first from None
        raise
    listings = tuple(task.result() for task in tasks)
    return McpToolset(tuple(listing.serial for listing in listings), listings)


@dataclass(frozen=True)
class ServerTools:
    """What the editor shows of one server: its tools (name, description) or why it failed."""

    name: str
    transport: str
    tools: list[tuple[str, str]]
    error: str | None = None


async def describe_servers(
    servers: Any, policy: McpPolicy, builtin_names: Collection[str]
) -> list[ServerTools]:
    """Each server of `mcp_servers` with its tools as an agent gets them, or its error."""
    try:
        parsed = parse_mcp_servers(servers or {})
    except ValueError as exc:
        return [ServerTools("mcp_servers", "", [], f"invalid: {exc}")]
    results = await asyncio.gather(
        *(_listing(n, s, policy) for n, s in parsed.items()), return_exceptions=True
    )
    listings = [r for r in results if isinstance(r, McpListing)]
    named = McpToolset((), tuple(listings)).tools(builtin_names)
    shown: list[ServerTools] = []
    for (name, server), result in zip(parsed.items(), results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, McpServerError):
                raise result
            shown.append(ServerTools(name, server.transport, [], str(result)))
            continue
        mine = [t for t in named if t.metadata and t.metadata.get("mcp_server") == name]
        tools = [(t.name, t.description) for t in mine]
        shown.append(ServerTools(name, server.transport, tools))
    return shown


def forget_listings() -> None:
    """Drop every cached listing (tests; a server known to have changed)."""
    with _CACHE_LOCK:
        _CACHE.clear()


async def _listing(name: str, server: McpServer, policy: McpPolicy) -> McpListing:
    key = (name, json.dumps(server.model_dump(), sort_keys=True), policy)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.expires > time.monotonic():
            _CACHE.move_to_end(key)
            return cached.listing
    tools = await _list_tools(name, server, policy)
    listing = McpListing(name, server.transport, tools, next(_serials))
    with _CACHE_LOCK:
        _CACHE[key] = _Cached(listing, time.monotonic() + LISTING_TTL_S)
        _CACHE.move_to_end(key)
        while len(_CACHE) > MAX_LISTINGS:
            _CACHE.popitem(last=False)
    return listing


async def _list_tools(name: str, server: McpServer, policy: McpPolicy) -> tuple[BaseTool, ...]:
    from langchain_mcp_adapters.tools import load_mcp_tools  # slow to import: only when used

    failed = "did not start" if isinstance(server, StdioServer) else "did not answer"
    if isinstance(server, StdioServer) and not policy.stdio:
        raise McpServerError(
            f"MCP server '{name}' did not start: stdio MCP servers are turned off on this "
            "server (ZERG_MCP_STDIO=off)"
        )
    try:
        async with asyncio.timeout(LIST_TIMEOUT_S):
            tools = await load_mcp_tools(
                None,
                connection=_connection(server, policy),  # type: ignore[arg-type]
                server_name=name,
                handle_tool_errors=False,
            )
    except TimeoutError:
        raise McpServerError(
            f"MCP server '{name}' {failed}: no tool listing within {LIST_TIMEOUT_S:g} s"
        ) from None
    except Exception as exc:
        logger.info("MCP server %r failed to list its tools", name, exc_info=exc)
        raise McpServerError(f"MCP server '{name}' {failed}: {describe_error(exc)}") from None
    logger.info("MCP server %r lists %d tool(s)", name, len(tools))
    return tuple(tools)


def _connection(server: McpServer, policy: McpPolicy) -> dict[str, Any]:
    """The adapter's connection config for `server`."""
    if isinstance(server, StdioServer):
        return {
            "transport": "stdio",
            "command": server.command,
            "args": list(server.args),
            "env": dict(server.env) if server.env is not None else None,
        }
    return _http_connection(server, policy.http)


def _http_connection(server: HttpServer, policy: HttpGetPolicy) -> dict[str, Any]:
    def client(
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.AsyncClient:
        # trust_env=False: no proxy from the environment may carry requests past the guard.
        return httpx.AsyncClient(
            transport=GuardedTransport(policy),
            headers=headers,
            timeout=timeout or httpx.Timeout(HTTP_TIMEOUT_S),
            auth=auth,
            follow_redirects=True,
            max_redirects=policy.max_redirects,
            trust_env=False,
        )

    return {
        "transport": "streamable_http",
        "url": server.url,
        "headers": dict(server.headers),
        "timeout": HTTP_TIMEOUT_S,
        "httpx_client_factory": client,
    }


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends each request (each redirect too) to the address the network guard vetted for its
    URL, with the URL's host in the Host header and to TLS, and reads at most
    MAX_RESPONSE_BYTES of each response."""

    def __init__(self, policy: HttpGetPolicy) -> None:
        self.policy = policy
        # No pooled connections: a connection to one vetted address must not serve another host.
        self.inner = httpx.AsyncHTTPTransport(
            verify=policy.ssl_context or True, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        address = await vet_url(url, self.policy.networks)
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.raw_host.decode("ascii")
        headers = request.headers.copy()
        headers["Host"] = url.netloc.decode("ascii")
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=str(address)),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        response = await self.inner.handle_async_request(pinned)
        stream = _CappedStream(response.stream, MAX_RESPONSE_BYTES)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, limit: int) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self.stream, self.limit = stream, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self.stream:
            received += len(chunk)
            if received > self.limit:
                raise httpx.ReadError(f"the MCP server sent more than {self.limit:,} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


def _guarded_tool(inner: BaseTool, server: str, name: str) -> BaseTool:
    """`inner` under `name`, its output as text (at most MAX_OUTPUT_CHARS), and every failure
    a `ToolException` that says what failed."""

    async def call(**arguments: Any) -> str:
        try:
            content = await inner.ainvoke(arguments)
        except ToolException as exc:  # the tool's own error result
            raise ToolException(_clip(str(exc))) from None
        except Exception as exc:
            raise ToolException(f"MCP server '{server}' failed: {describe_error(exc)}") from None
        return _clip(_text(content))

    return StructuredTool(
        name=name,
        description=inner.description,
        args_schema=inner.args_schema,
        coroutine=call,
        metadata={"mcp_server": server, "mcp_tool": inner.name},
    )


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_error(exc: BaseException) -> str:
    """One line for what went wrong, from inside the task groups of the MCP client."""
    exc = _first_error(exc)
    if isinstance(exc, (RefusedURL, ToolException)):
        return str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename is None:
        return "command not found"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {_redacted(exc.request.url)}"
    text = " ".join(str(exc).split())
    text = text if len(text) <= 300 else text[:299] + "…"
    kind = type(exc).__name__
    if kind == "McpError" and text == "Connection closed":
        return "connection closed (the command exited, or does not speak MCP on stdio)"
    return f"{kind}: {text}" if text else kind


def _redacted(url: httpx.URL) -> str:
    return str(url.copy_with(query=None, fragment=None, username=None, password=None))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, Sequence):
        return str(content)
    parts: list[str] = []
    for block in content:
        if isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, Mapping):
            parts.append(f"[{block.get('type', 'non-text')} content not shown]")
        else:
            parts.append(str(block))
    return "\n".join(parts)


def _clip(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return (
        text[:MAX_OUTPUT_CHARS]
        + f"\n[Truncated: only the first {MAX_OUTPUT_CHARS:,} characters of the output]"
    )


def _valid_name(name: str) -> str:
    return _INVALID_NAME_CHARS.sub("_", name)[:_MAX_TOOL_NAME] or "tool"
