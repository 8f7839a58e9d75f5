"""A small MCP server for the tests: `greet` and `explode` (which fails on purpose).

Run as a script it serves stdio (`python tests/support/mcp_server.py`); `serve_http(token)`
serves the same tools over streamable HTTP on a loopback port in a thread, answering only
requests with `Authorization: Bearer <token>`. Each start (a stdio process, or an HTTP
session's `initialize`) and each `tools/list` over HTTP appends a line to the file named by the
environment variable MCP_TEST_LOG, so tests can count them.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mcp.server.fastmcp import FastMCP
from starlette.types import ASGIApp, Receive, Scope, Send


def _log(line: str, path: str | None = None) -> None:
    path = path or os.environ.get("MCP_TEST_LOG")
    if path:
        with Path(path).open("a", encoding="utf-8") as log:
            log.write(line + "\n")


def build(name: str = "test-tools") -> FastMCP:
    server: FastMCP = FastMCP(name, log_level="WARNING")

    @server.tool()
    def greet(name: str = "world") -> str:
        """Greet someone by name."""
        return f"Hello, {name}!"

    @server.tool()
    def explode(reason: str = "on purpose") -> str:
        """Always fails, to test errors."""
        raise ValueError(f"exploded {reason}")

    return server


class _RequireToken:
    """Answers 401 to a request without the bearer token; logs each JSON-RPC method."""

    def __init__(self, app: ASGIApp, token: str, log_path: str | None) -> None:
        self.app, self.token, self.log_path = app, token, log_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if headers.get(b"authorization") != f"Bearer {self.token}".encode():
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self._log_method(body)
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _log_method(self, body: bytes) -> None:
        try:
            method = json.loads(body).get("method") if body else None
        except (ValueError, AttributeError):
            method = None
        if method in ("initialize", "tools/list"):
            _log("start" if method == "initialize" else "list", self.log_path)


@contextmanager
def serve_http(token: str, log_path: str | None = None) -> Iterator[str]:
    """The server over streamable HTTP until the block ends; yields its /mcp URL."""
    from tests.support.server import serve_in_thread

    app = build().streamable_http_app()
    with serve_in_thread(_RequireToken(app, token, log_path)) as url:  # type: ignore[arg-type]
        yield f"{url}/mcp"


if __name__ == "__main__":
    _log("start")
    build().run("stdio")
