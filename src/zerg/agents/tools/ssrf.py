"""The SSRF guard of `http_get`: which URLs and addresses an agent may reach.

A URL passes when its scheme is http(s), its host is not a known metadata name, and *every* address
its host resolves to is public or inside an operator's allowed network. The caller then connects to
the returned, vetted address itself, so a second DNS answer (rebinding) can never swap it.
"""

import asyncio
import socket
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import httpx
from langchain_core.tools import ToolException

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
# Cloud metadata services by name: refused before any lookup (their addresses are refused too).
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)

_REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ip_network(network), label)
    for network, label in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local (cloud metadata) address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved or broadcast address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/8", "a reserved address"),
        ("64:ff9b:1::/48", "a local NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/23", "an IETF protocol address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a unique local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")


class RefusedURL(ToolException):
    """`http_get` will not fetch this URL; raised before any connection is made."""


def refusal_reason(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why `address` may not be reached (None when it may): not public and not in `allowed`.

    An IPv4-mapped or NAT64 address is judged by the IPv4 address it stands for; a 6to4 one by
    both that and itself.
    """
    forms = _judged_forms(address)
    if any(form in network for form in (address, *forms) for network in allowed):
        return None
    for form in forms:
        for network, label in _REFUSED_NETWORKS:
            if form in network:
                return f"{form} is {label} ({network})"
    if not all(form.is_global for form in forms):
        return f"{address} is not a public address"
    return None


async def vet_url(url: httpx.URL, allowed: Sequence[IPNetwork] = ()) -> IPAddress:
    """The address to connect to for `url`; raises `RefusedURL` when the guard refuses it."""
    if url.scheme not in ALLOWED_SCHEMES:
        raise RefusedURL(f"Refused {url}: only absolute http:// and https:// URLs can be fetched")
    host = url.raw_host.decode("ascii")
    if not host:
        raise RefusedURL(f"Refused {url}: the URL has no host")
    if host.rstrip(".").lower() in METADATA_HOSTNAMES:
        raise RefusedURL(f"Refused {url}: {host} is a cloud metadata service")
    literal = _ip_literal(host)
    addresses = (
        [literal] if literal is not None else await _resolve(host, url.port or _default_port(url))
    )
    for address in addresses:
        reason = refusal_reason(address, allowed)
        if reason is not None:
            via = "" if literal is not None else f"{host} resolves to "
            reachable = ", ".join(["public addresses", *map(str, allowed)])
            raise RefusedURL(f"Refused {url}: {via}{reason}; http_get only reaches {reachable}")
    return addresses[0]


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ToolException(f"Could not resolve host {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise ToolException(f"Could not resolve host {host!r}: no addresses")
    return addresses


def _judged_forms(address: IPAddress) -> list[IPAddress]:
    if isinstance(address, IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64:
        return [IPv4Address(address.packed[-4:])]
    if address.sixtofour is not None:
        return [address.sixtofour, address]
    return [address]


def pinned_request(
    method: str,
    url: httpx.URL,
    address: IPAddress,
    timeout_s: float,
    *,
    headers: Mapping[str, str],
    content: bytes | None = None,
) -> httpx.Request:
    """A request for `url` sent to the vetted `address`, naming `url`'s host in the Host header
    and to TLS, so DNS cannot swap the address after the check.

    Built directly rather than by the client, so no cookie from an earlier hop is sent along.
    """
    extensions: dict[str, object] = {"timeout": httpx.Timeout(timeout_s).as_dict()}
    if url.scheme == "https":
        extensions["sni_hostname"] = url.raw_host.decode("ascii")
    return httpx.Request(
        method,
        url.copy_with(host=str(address)),
        headers={**headers, "Host": url.netloc.decode("ascii")},
        content=content,
        extensions=extensions,
    )
