"""The `http_get` tool: fetch a URL for an agent, behind the SSRF guard of `ssrf`.

Every hop (the URL and each redirect target) is vetted before anything connects, and the request
goes to the vetted address with the original Host header and TLS server name, so DNS cannot
change the destination between the check and the connection.

The body is read raw and decoded here rather than by httpx, whose decoders inflate each chunk
without limit: a few kilobytes of gzip or zstd can expand to gigabytes. At most `max_bytes` are
read off the wire and at most `max_bytes` are decoded; encodings whose output cannot be capped
while decoding are refused.
"""

import asyncio
import codecs
import logging
import ssl
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network

import httpx
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from zerg.agents.tools.ssrf import IPAddress, IPNetwork, RefusedURL, pinned_request, vet_url

logger = logging.getLogger(__name__)

_HEADERS = {
    "User-Agent": "Zerg-agent/0.1 (http_get tool)",
    "Accept": "text/html, application/json, text/*;q=0.9, */*;q=0.8",
    # A server may compress anyway; `_decoder` bounds what it sends.
    "Accept-Encoding": "identity",
}
# Content codings decoded with a cap on their output (zlib's `max_length`); others are refused.
_DECODABLE = ("gzip", "x-gzip", "deflate")
_GZIP_WBITS = zlib.MAX_WBITS | 16
_TEXT_TYPES = frozenset(
    {
        "application/javascript",
        "application/ecmascript",
        "application/x-javascript",
        "application/x-www-form-urlencoded",
        "application/x-ndjson",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/graphql",
    }
)


@dataclass(frozen=True)
class HttpGetPolicy:
    """What `http_get` may reach and how much it may read.

    `allowed_networks` (CIDR strings or networks) opens otherwise refused addresses, e.g. an
    internal service an operator wants agents to use; everything else non-public stays refused.
    `ssl_context` replaces the default CA bundle, e.g. to trust an internal CA.
    """

    allowed_networks: Sequence[str | IPv4Network | IPv6Network] = ()
    max_bytes: int = 100_000
    timeout_s: float = 15.0
    max_redirects: int = 5
    ssl_context: ssl.SSLContext | None = None
    networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A network with host bits set ("10.0.0.1/8") is an operator mistake: fail loudly.
        object.__setattr__(self, "allowed_networks", tuple(self.allowed_networks))
        object.__setattr__(self, "networks", tuple(map(ip_network, self.allowed_networks)))
        if self.max_bytes <= 0 or self.timeout_s <= 0 or self.max_redirects < 0:
            raise ValueError("max_bytes and timeout_s must be positive, max_redirects >= 0")


class HttpGetArgs(BaseModel):
    url: str = Field(description="The absolute http:// or https:// URL to fetch.")


async def http_get(url: str, policy: HttpGetPolicy) -> str:
    """Status, final URL, content type and text body of a GET of `url`.

    Raises `RefusedURL` (a `ToolException`) when the guard refuses a hop and `ToolException` for
    an invalid URL, a timeout, too many redirects or a failed connection.
    """
    try:
        async with asyncio.timeout(policy.timeout_s):
            return await _fetch(_parse(url), policy)
    except RefusedURL as exc:
        logger.info("http_get refused: %s", exc)
        raise
    except (TimeoutError, httpx.TimeoutException):
        raise ToolException(f"Timed out after {policy.timeout_s:g} s fetching {url}") from None
    except httpx.HTTPError as exc:
        raise ToolException(f"Could not fetch {url}: {str(exc) or type(exc).__name__}") from None


async def _fetch(url: httpx.URL, policy: HttpGetPolicy) -> str:
    # No pooled connections: a connection to one vetted address must not serve another host.
    transport = httpx.AsyncHTTPTransport(
        verify=policy.ssl_context or True, limits=httpx.Limits(max_keepalive_connections=0)
    )
    # trust_env=False: no proxy from the environment may carry the request past the guard.
    async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
        for redirects in range(policy.max_redirects + 1):
            address = await vet_url(url, policy.networks)
            request = _pinned_request(url, address, policy.timeout_s)
            response = await client.send(request, stream=True)
            try:
                if not response.is_redirect:
                    decode = _decoder(url, response)
                    body, truncated = await _read(response, decode, policy.max_bytes)
                    return _render(url, redirects, response, body, truncated)
                url = _parse(str(url), response.headers["location"])
            finally:
                await response.aclose()
    raise ToolException(f"Too many redirects (more than {policy.max_redirects}); stopped at {url}")


def _parse(url: str, location: str | None = None) -> httpx.URL:
    """`url`, or the `location` it redirects to (relative to it)."""
    try:
        parsed = httpx.URL(url.strip())
        return parsed if location is None else parsed.join(location.strip())
    except httpx.InvalidURL as exc:
        target = url if location is None else f"redirect target {location}"
        raise ToolException(f"Invalid URL {target!r}: {exc}") from None


def _pinned_request(url: httpx.URL, address: IPAddress, timeout_s: float) -> httpx.Request:
    return pinned_request("GET", url, address, timeout_s, headers=_HEADERS)


Decoder = Callable[[bytes, int], bytes]
"""Decodes the next raw chunk into at most `limit` (>= 1) bytes; the rest of its output is lost."""


def _decoder(url: httpx.URL, response: httpx.Response) -> Decoder:
    """How to decode the body of `response` within a size limit; refuses what cannot be."""
    header = response.headers.get("content-encoding", "")
    codings = [c for c in map(str.strip, header.lower().split(",")) if c not in ("", "identity")]
    if not codings:
        return lambda data, limit: data[:limit]
    if len(codings) == 1 and codings[0] in _DECODABLE:
        return _Inflater(url, codings[0])
    raise ToolException(
        f"Could not read {url}: its body came with Content-Encoding {header!r} although none "
        f"was asked for; http_get decodes only {', '.join(_DECODABLE)} (one at a time), because "
        "other encodings cannot be decoded within its size limit"
    )


class _Inflater:
    """A gzip or deflate body, decoded at most `limit` bytes at a time (zlib's `max_length`)."""

    def __init__(self, url: httpx.URL, coding: str) -> None:
        self.what = f"the {coding} body of {url}"
        self.wbits = zlib.MAX_WBITS if coding == "deflate" else _GZIP_WBITS
        self.inflater = zlib.decompressobj(self.wbits)
        self.started = False

    def __call__(self, data: bytes, limit: int) -> bytes:
        started, self.started = self.started, True
        try:
            return self.inflater.decompress(data, limit)
        except zlib.error as exc:
            if not started and self.wbits == zlib.MAX_WBITS:
                # "deflate" is zlib-wrapped per RFC 9110, but some servers send it raw.
                self.wbits = -zlib.MAX_WBITS
                self.inflater = zlib.decompressobj(self.wbits)
                return self(data, limit)
            raise ToolException(f"Could not decode {self.what}: {exc}") from None


async def _read(response: httpx.Response, decode: Decoder, max_bytes: int) -> tuple[bytes, bool]:
    """At most `max_bytes` of decoded body, and whether there was more. Reading stops too once
    more than `max_bytes` came off the wire."""
    body, received = bytearray(), 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        # Asking for one byte more than fits tells whether there was more.
        body += decode(chunk, max_bytes + 1 - len(body))
        if len(body) > max_bytes or received > max_bytes:
            return bytes(body[:max_bytes]), True
    return bytes(body), False


def _render(
    url: httpx.URL, redirects: int, response: httpx.Response, body: bytes, truncated: bool
) -> str:
    content_type = response.headers.get("content-type", "")
    after = f" (after {redirects} redirect{'s' * (redirects > 1)})" if redirects else ""
    lines = [
        f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
        f"URL: {url}{after}",
        f"Content-Type: {content_type or 'unknown'}",
        "",
    ]
    if _is_text(content_type):
        lines.append(body.decode(_charset(response), errors="replace"))
    else:
        lines.append(f"[{len(body)} bytes of {content_type} content not shown]")
    if truncated:
        lines.append(f"[Truncated: only the first {len(body)} bytes of the body were read]")
    return "\n".join(lines)


def _is_text(content_type: str) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    return (
        not mime
        or mime.startswith("text/")
        or mime.endswith(("/json", "+json", "/xml", "+xml"))
        or mime in _TEXT_TYPES
    )


def _charset(response: httpx.Response) -> str:
    charset = response.charset_encoding or "utf-8"
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return "utf-8"


def http_get_tool(policy: HttpGetPolicy | None = None) -> BaseTool:
    """The `http_get` tool under `policy` (by default: public addresses only)."""
    active = policy or HttpGetPolicy()

    async def fetch(url: str) -> str:
        return await http_get(url, active)

    return StructuredTool.from_function(
        coroutine=fetch,
        name="http_get",
        description=(
            "Fetch a URL with an HTTP GET request and return the status, final URL, content type "
            f"and text body (at most {active.max_bytes:,} bytes; longer bodies are truncated). "
            f"Follows up to {active.max_redirects} redirects. Only http(s) URLs of public hosts "
            "can be fetched; private and internal addresses are refused."
        ),
        args_schema=HttpGetArgs,
    )
