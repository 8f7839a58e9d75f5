"""`http_get` over TLS: the connection goes to the vetted address, the certificate is checked
against the URL's host name (sent as SNI), not against that address."""

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from langchain_core.tools import ToolException

from tests.agents.tools.conftest import FakeDNS
from zerg.agents.tools import HttpGetPolicy, build_tools

pytestmark = pytest.mark.anyio

app = FastAPI()


@app.get("/host")
def host(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"host={request.headers['host']}")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name `secure.test` only."""
    root = tmp_path_factory.mktemp("tls")
    key, cert = root / "key.pem", root / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=secure.test",
         "-addext", "subjectAltName=DNS:secure.test"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="module")
def port(certificate: tuple[Path, Path]) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 presenting that certificate."""
    key, cert = certificate
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ssl_keyfile=str(key), ssl_certfile=str(cert)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "TLS test server did not start"
        time.sleep(0.005)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def policy(certificate: tuple[Path, Path]) -> HttpGetPolicy:
    trust = ssl.create_default_context(cafile=certificate[1])
    return HttpGetPolicy(allowed_networks=["127.0.0.1/32"], ssl_context=trust)


async def test_verifies_the_host_name_while_connecting_to_the_vetted_address(
    port: int, policy: HttpGetPolicy, fake_dns: FakeDNS, connects: list[str]
) -> None:
    lookups = fake_dns({"secure.test": [["127.0.0.1"], ["10.0.0.1"]]})
    (tool,) = build_tools(["http_get"], http_policy=policy)

    result = await tool.ainvoke({"url": f"https://secure.test:{port}/host"})

    assert result.startswith(f"HTTP 200 OK\nURL: https://secure.test:{port}/host\n")
    assert result.endswith(f"\nhost=secure.test:{port}")
    assert lookups == ["secure.test"]
    assert connects == ["127.0.0.1"]


async def test_a_certificate_for_another_name_is_refused(
    port: int, policy: HttpGetPolicy, fake_dns: FakeDNS
) -> None:
    fake_dns({"impostor.test": [["127.0.0.1"]]})
    (tool,) = build_tools(["http_get"], http_policy=policy)

    with pytest.raises(ToolException, match=r"CERTIFICATE_VERIFY_FAILED.*Hostname mismatch"):
        await tool.ainvoke({"url": f"https://impostor.test:{port}/host"})


async def test_the_default_ca_bundle_does_not_trust_a_self_signed_certificate(
    port: int, fake_dns: FakeDNS
) -> None:
    fake_dns({"secure.test": [["127.0.0.1"]]})
    policy = HttpGetPolicy(allowed_networks=["127.0.0.1/32"])
    (tool,) = build_tools(["http_get"], http_policy=policy)

    with pytest.raises(ToolException, match="CERTIFICATE_VERIFY_FAILED"):
        await tool.ainvoke({"url": f"https://secure.test:{port}/host"})
