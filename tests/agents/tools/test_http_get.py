"""`http_get` against a real HTTP server on 127.0.0.1, and its SSRF guard under the default policy.

Refusals must happen before anything connects: `connects` records every socket connect.
"""

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from langchain_core.tools import BaseTool, ToolException

from tests.agents.tools.conftest import FakeDNS
from tests.support.server import serve_in_thread
from zerg.agents.tools import HttpGetPolicy, RefusedURL, build_tools

pytestmark = pytest.mark.anyio

hits: list[str] = []


def _record(request: Request) -> None:
    hits.append(request.url.path)


app = FastAPI(dependencies=[Depends(_record)])


@app.get("/text")
def text() -> PlainTextResponse:
    return PlainTextResponse("hello from the test server")


@app.get("/host")
def host(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"host={request.headers['host']}")


@app.get("/missing")
def missing() -> PlainTextResponse:
    return PlainTextResponse("no such page", status_code=404)


@app.get("/big")
def big() -> PlainTextResponse:
    return PlainTextResponse("0123456789" * 30_000)


@app.get("/latin1")
def latin1() -> Response:
    return Response("café".encode("latin-1"), media_type="text/plain; charset=latin-1")


@app.get("/binary")
def binary() -> Response:
    return Response(bytes(range(256)), media_type="image/png")


@app.get("/slow")
async def slow(request: Request) -> PlainTextResponse:
    for _ in range(100):  # up to 5 s, but give up as soon as the client is gone
        if await request.is_disconnected():
            break
        await asyncio.sleep(0.05)
    return PlainTextResponse("too late")


@app.get("/trickle")
def trickle() -> StreamingResponse:
    async def drip() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"."
            await asyncio.sleep(0.05)

    return StreamingResponse(drip(), media_type="text/plain")


@app.get("/redirect")
def redirect(to: str, status: int = 302) -> Response:
    return Response(status_code=status, headers={"location": to})


@app.get("/login")
def login() -> Response:
    response = Response(status_code=302, headers={"location": "/cookies"})
    response.set_cookie("session", "secret")
    return response


@app.get("/cookies")
def cookies(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"cookie={request.headers.get('cookie')}")


@app.get("/chain/{n}")
def chain(n: int) -> Response:
    if n == 0:
        return PlainTextResponse("end of chain")
    return Response(status_code=302, headers={"location": f"/chain/{n - 1}"})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(autouse=True)
def _clear_hits() -> None:
    hits.clear()


@pytest.fixture
def port(server: str) -> int:
    return int(server.rsplit(":", 1)[1])


def http_get(**policy: Any) -> BaseTool:
    """The tool as an agent gets it, allowed to reach the test server on 127.0.0.1."""
    policy.setdefault("allowed_networks", ["127.0.0.1/32"])
    return build_tools(["http_get"], http_policy=HttpGetPolicy(**policy))[0]


async def fetch(tool: BaseTool, url: str) -> str:
    result: str = await tool.ainvoke({"url": url})
    return result


async def test_returns_status_url_content_type_and_body(server: str) -> None:
    result = await fetch(http_get(), f"{server}/text")
    assert result == (
        "HTTP 200 OK\n"
        f"URL: {server}/text\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "hello from the test server"
    )


async def test_an_error_status_is_a_result_not_an_exception(server: str) -> None:
    result = await fetch(http_get(), f"{server}/missing")
    assert result.startswith("HTTP 404 Not Found\n")
    assert result.endswith("\nno such page")


async def test_truncates_the_body_and_says_so(server: str) -> None:
    result = await fetch(http_get(max_bytes=1000), f"{server}/big")
    _, body = result.split("\n\n", 1)
    text, notice = body.rsplit("\n", 1)
    assert text == ("0123456789" * 100)
    assert notice == "[Truncated: only the first 1000 bytes of the body were read]"


async def test_decodes_the_declared_charset(server: str) -> None:
    assert (await fetch(http_get(), f"{server}/latin1")).endswith("\ncafé")


async def test_does_not_dump_binary_content(server: str) -> None:
    result = await fetch(http_get(), f"{server}/binary")
    assert result.endswith("\n[256 bytes of image/png content not shown]")


async def test_times_out_on_a_slow_response(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(ToolException, match=r"Timed out after 0.3 s fetching .*/slow"):
        await fetch(http_get(timeout_s=0.3), f"{server}/slow")
    assert time.monotonic() - started < 2


async def test_the_time_limit_covers_a_trickling_body(server: str) -> None:
    started = time.monotonic()
    with pytest.raises(ToolException, match=r"Timed out after 0\.5 s"):
        await fetch(http_get(timeout_s=0.5), f"{server}/trickle")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_follows_a_redirect(server: str, status: int) -> None:
    result = await fetch(http_get(), f"{server}/redirect?to=/text&status={status}")
    assert f"URL: {server}/text (after 1 redirect)\n" in result
    assert result.endswith("\nhello from the test server")
    assert hits == ["/redirect", "/text"]


async def test_follows_an_absolute_redirect(server: str) -> None:
    result = await fetch(http_get(), f"{server}/redirect?to={server}/text")
    assert result.endswith("\nhello from the test server")


async def test_sends_no_cookies_from_an_earlier_hop(server: str) -> None:
    assert (await fetch(http_get(), f"{server}/login")).endswith("\ncookie=None")


async def test_follows_at_most_max_redirects(server: str) -> None:
    tool = http_get(max_redirects=5)
    assert "(after 5 redirects)" in await fetch(tool, f"{server}/chain/5")
    with pytest.raises(ToolException, match=r"Too many redirects \(more than 5\)"):
        await fetch(tool, f"{server}/chain/6")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://[::1]:{port}/text", "loopback"),
        ("http://127.0.0.2:{port}/text", "loopback"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
        ("file:///etc/passwd", "only absolute http"),
    ],
)
async def test_refuses_a_redirect_to_a_disallowed_address_without_connecting(
    server: str, port: int, connects: list[str], target: str, reason: str
) -> None:
    target = target.format(port=port)
    with pytest.raises(RefusedURL, match=f"Refused .*: .*{reason}"):
        await fetch(http_get(), f"{server}/redirect?to={target}")
    assert hits == ["/redirect"]
    assert set(connects) == {"127.0.0.1"}


async def test_an_invalid_redirect_target_is_a_tool_error(server: str) -> None:
    with pytest.raises(ToolException, match="Invalid URL in location header"):
        await fetch(http_get(), f"{server}/redirect?to=http://[::1")


async def test_connects_to_the_vetted_address_only(
    server: str, port: int, fake_dns: FakeDNS, connects: list[str]
) -> None:
    # DNS rebinding: the first answer passes the guard, later ones point inside the network.
    lookups = fake_dns({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    result = await fetch(http_get(), f"http://rebind.test:{port}/host")
    assert result.endswith(f"\nhost=rebind.test:{port}")
    assert lookups == ["rebind.test"]
    assert connects == ["127.0.0.1"]


async def test_refuses_a_host_if_any_of_its_addresses_is_disallowed(
    fake_dns: FakeDNS, connects: list[str]
) -> None:
    fake_dns({"mixed.test": [["93.184.216.34", "10.0.0.5"]]})
    with pytest.raises(RefusedURL, match=r"mixed.test resolves to 10.0.0.5 is a private address"):
        await fetch(http_get(), "http://mixed.test/")
    assert connects == []


async def test_an_unresolvable_host_is_a_tool_error(fake_dns: FakeDNS) -> None:
    fake_dns({"nowhere.test": [[]]})
    with pytest.raises(ToolException, match=r"Could not resolve host 'nowhere\.test'"):
        await fetch(http_get(), "http://nowhere.test/")


async def test_a_refused_connection_is_a_tool_error() -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ToolException, match=f"Could not fetch http://127.0.0.1:{port}/"):
        await fetch(http_get(), f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:{port}/text", "127.0.0.1 is a loopback address"),
        ("http://localhost:{port}/text", "localhost resolves to 127.0.0.1 is a loopback address"),
        ("http://LocalHost:{port}/text", "resolves to 127.0.0.1 is a loopback address"),
        ("http://[::1]:{port}/text", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/text", "127.0.0.1 is a loopback address"),
        ("http://2130706433:{port}/text", "resolves to 127.0.0.1 is a loopback address"),
        ("http://0.0.0.0:{port}/text", "0.0.0.0 is an unspecified"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
        ("http://172.16.0.1/", "172.16.0.1 is a private address"),
        (
            "http://169.254.169.254/latest/meta-data",
            "169.254.169.254 is a link-local (cloud metadata) address",
        ),
        ("http://100.64.0.1/", "100.64.0.1 is a shared"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[fd00::1]/", "fd00::1 is a unique local"),
        ("http://[fe80::1]/", "fe80::1 is a link-local address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "is a cloud metadata service"),
        ("http://metadata/", "is a cloud metadata service"),
        ("file:///etc/passwd", "only absolute http:// and https:// URLs can be fetched"),
        ("ftp://example.com/file.txt", "only absolute http:// and https:// URLs can be fetched"),
        ("gopher://example.com/", "only absolute http:// and https:// URLs can be fetched"),
        ("example.com/page", "only absolute http:// and https:// URLs can be fetched"),
        ("http:///no-host", "the URL has no host"),
    ],
)
async def test_default_policy_refuses_before_connecting(
    server: str, port: int, connects: list[str], url: str, message: str
) -> None:
    (tool,) = build_tools(["http_get"])
    with pytest.raises(RefusedURL, match=re.escape(message)):
        await fetch(tool, url.format(port=port))
    assert connects == []
    assert hits == []


@pytest.mark.parametrize("url", ["not a url", "http://exa mple.com/", "http://[::1/"])
async def test_an_invalid_url_is_a_tool_error(url: str, connects: list[str]) -> None:
    with pytest.raises(ToolException):
        await fetch(http_get(), url)
    assert connects == []


def test_policy_rejects_an_ambiguous_network() -> None:
    with pytest.raises(ValueError, match="has host bits set"):
        HttpGetPolicy(allowed_networks=["10.0.0.1/8"])


@pytest.mark.parametrize("limits", [{"max_bytes": 0}, {"timeout_s": 0}, {"max_redirects": -1}])
def test_policy_rejects_non_positive_limits(limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        HttpGetPolicy(**limits)
