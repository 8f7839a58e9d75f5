"""Fixtures for the built-in tool tests: the async backend, a connect recorder and a fake DNS."""

import socket
from collections.abc import Callable
from typing import Any

import pytest

FakeDNS = Callable[[dict[str, list[list[str]]]], list[str]]


@pytest.fixture
def anyio_backend() -> str:
    # The tools run on asyncio (the agent loop's event loop): no trio variant.
    return "asyncio"


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Hosts of every socket connect made during the test (on top of the suite's network guard)."""
    seen: list[str] = []
    guarded: Callable[[socket.socket, Any], None] = socket.socket.connect

    def record(self: socket.socket, address: Any) -> None:
        seen.append(address[0] if isinstance(address, tuple) else str(address))
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    return seen


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    """`fake_dns({name: [answer, ...]})` answers each lookup of `name` with its next answer (a list
    of IPv4 addresses; the last one repeats, an empty one fails); returns the names looked up."""

    def install(answers: dict[str, list[list[str]]]) -> list[str]:
        lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in answers:
                return real(host, port, *args, **kwargs)
            lookups.append(host)
            addresses = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return lookups

    return install
