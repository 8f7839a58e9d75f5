"""The request body cap: a body over ZERG_MAX_BODY_BYTES is a 413, read no further than the cap."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.helpers import AgentFactory, assert_error
from zerg.settings import Settings

CHUNK = 16 * 1024
# Smaller than a webhook delivery may be, to show that deliveries keep their own limit.
CAP = 64 * 1024


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data", max_body_bytes=CAP)


def _agent_json(system_instructions: str) -> bytes:
    body = {"name": "big", "model": "scripted:demo", "system_instructions": system_instructions}
    return json.dumps(body).encode()


def _connect(base_url: str) -> socket.socket:
    url = urlsplit(base_url)
    assert url.hostname is not None and url.port is not None
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    return sock


def _read_status_and_body(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of one response (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int({k.lower(): v for k, v in headers.items()}["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        rest += chunk
    return int(lines[0].split()[1]), json.loads(rest[:length])


def test_a_declared_length_over_the_cap_is_413_and_stores_nothing(
    client: httpx.Client, settings: Settings
) -> None:
    body = _agent_json("x" * settings.max_body_bytes)

    response = client.post(
        "/api/agents", content=body, headers={"content-type": "application/json"}
    )

    assert_error(response, 413, "payload_too_large", f"{settings.max_body_bytes}-byte limit")
    assert client.get("/api/agents").json()["items"] == []


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read(
    base_url: str, client: httpx.Client, settings: Settings
) -> None:
    # Headers only: a server that waited for the body would never answer (socket timeout).
    with _connect(base_url) as sock:
        sock.sendall(
            b"POST /api/agents HTTP/1.1\r\nHost: zerg\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {100 * 1024 * 1024 * 1024}\r\n\r\n".encode()
        )
        status, body = _read_status_and_body(sock)

    assert status == 413
    assert body["code"] == "payload_too_large"
    assert client.get("/api/agents").json()["items"] == []


def test_a_chunked_body_over_the_cap_is_413_and_stores_nothing(
    client: httpx.Client, settings: Settings
) -> None:
    head = b'{"name": "big", "model": "scripted:demo", "system_instructions": "'
    sent = 0

    def body() -> Iterator[bytes]:  # no length known in advance: Transfer-Encoding: chunked
        nonlocal sent
        yield head
        while sent < 3 * settings.max_body_bytes:
            sent += CHUNK
            yield b"x" * CHUNK
        yield b'"}'

    response = client.post(
        "/api/agents", content=body(), headers={"content-type": "application/json"}
    )

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_error(response, 413, "payload_too_large", f"{settings.max_body_bytes}-byte limit")
    assert client.get("/api/agents").json()["items"] == []


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_cap(
    base_url: str, client: httpx.Client, settings: Settings
) -> None:
    # The body never ends: a server that read it whole would never answer (socket timeout).
    with _connect(base_url) as sock:
        sock.sendall(
            b"POST /api/agents HTTP/1.1\r\nHost: zerg\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(settings.max_body_bytes // CHUNK + 1):
            sock.sendall(f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n")
        status, body = _read_status_and_body(sock)

    assert status == 413
    assert body["code"] == "payload_too_large"
    assert client.get("/api/agents").json()["items"] == []


def test_a_body_at_the_cap_is_accepted(client: httpx.Client, settings: Settings) -> None:
    padding = settings.max_body_bytes - len(_agent_json(""))
    body = _agent_json("x" * padding)
    assert len(body) == settings.max_body_bytes

    response = client.post(
        "/api/agents", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 201, response.text
    assert len(response.json()["system_instructions"]) == padding


@pytest.mark.parametrize("chunked", [False, True])
def test_webhook_deliveries_keep_their_own_limit(
    client: httpx.Client, make_agent: AgentFactory, chunked: bool
) -> None:
    trigger = client.post(f"/api/agents/{make_agent()['id']}/triggers", json={}).json()
    url = trigger["url"]

    def body(size: int) -> bytes | Iterator[bytes]:
        data = b"x" * size
        return iter([data[:CHUNK], data[CHUNK:]]) if chunked else data

    # Over the API's cap but within a delivery's: it reaches the signature check.
    assert_error(client.post(url, content=body(CAP + 1)), 401, "invalid_signature")
    assert_error(client.post(url, content=body(257 * 1024)), 413, "payload_too_large", "256 KiB")
