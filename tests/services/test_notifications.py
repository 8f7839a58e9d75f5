"""One notification attempt against hostile or failing receivers on loopback: a single deadline
for the whole attempt, the reply's body never read, and the notify_url's secrets never shown."""

import asyncio
import base64
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from tests.api.helpers import Rows
from tests.support.server import serve_in_thread
from zerg.agents.tools import HttpGetPolicy
from zerg.db import Database
from zerg.services.notifications import DeliveryFailed, deliver, redact_url

pytestmark = pytest.mark.anyio

LOOPBACK = HttpGetPolicy(allowed_networks=["127.0.0.1/32"], timeout_s=1)
SECRETS = ("usr-s3cr3t", "pw-s3cr3t", "tok-s3cr3t", "frag-s3cr3t")
# Never reached: a test that would otherwise hang fails after this long instead.
HANG_S = 10


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Sent:
    bytes = 0


authorizations: list[str | None] = []


app = FastAPI()


@app.post("/endless")
def endless() -> StreamingResponse:
    async def forever() -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        while True:
            Sent.bytes += len(chunk)
            yield chunk
            await asyncio.sleep(0)

    return StreamingResponse(forever(), media_type="application/octet-stream")


@app.post("/fail")
def fail() -> Response:
    return Response(status_code=500)


@app.post("/auth")
def auth(request: Request) -> Response:
    authorizations.append(request.headers.get("authorization"))
    return Response(status_code=204)


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def trickler() -> Iterator[str]:
    """A receiver that sends its status line one byte every 50 ms, forever."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            for byte in iter(lambda: b"H", None):
                if stop.is_set():
                    return
                try:
                    connection.sendall(byte)
                except OSError:
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    thread.join(timeout=5)


def finished_run(database: Database, notify_url: str) -> int:
    rows = Rows(database)
    agent_id = rows.agent(notify_url=notify_url, notify_secret="whsec_" + "A" * 44)
    return rows.run(agent_id, status="succeeded", workflow_id="run-notified")


def with_secrets(base: str) -> str:
    user, password, token, fragment = SECRETS
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}?token={token}#{fragment}"


async def test_an_endless_reply_is_not_read(database: Database, receiver: str) -> None:
    run_id = finished_run(database, f"{receiver}/endless")
    Sent.bytes = 0
    started = time.monotonic()

    await asyncio.wait_for(deliver(database, run_id, LOOPBACK), HANG_S)

    assert time.monotonic() - started < LOOPBACK.timeout_s
    assert Sent.bytes < 10 * 1024 * 1024


async def test_one_deadline_covers_the_whole_attempt(database: Database, trickler: str) -> None:
    # Bytes keep arriving, so no single read ever times out: only the attempt's deadline ends it.
    run_id = finished_run(database, f"{trickler}/hook")
    started = time.monotonic()

    with pytest.raises(DeliveryFailed, match=r"^no answer within 1 s$"):
        await asyncio.wait_for(deliver(database, run_id, LOOPBACK), HANG_S)

    assert time.monotonic() - started < LOOPBACK.timeout_s + 1


@pytest.mark.parametrize(
    ("where", "policy", "expected"),
    [
        ("receiver", LOOPBACK, "answered 500"),  # an error status
        ("receiver", HttpGetPolicy(), "RefusedURL: Refused http://***@127.0.0.1"),  # the guard
        ("closed", LOOPBACK, "ConnectError"),  # nothing listens
        ("trickler", LOOPBACK, "no answer within 1 s"),  # the deadline
    ],
)
async def test_the_notify_urls_secrets_never_reach_the_logs(
    database: Database,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    where: str,
    policy: HttpGetPolicy,
    expected: str,
) -> None:
    if where == "closed":
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{unused.getsockname()[1]}"
    else:
        base = request.getfixturevalue(where)
    url = with_secrets(f"{base}/fail")
    run_id = finished_run(database, url)
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    # Listen on Zerg's logger itself too: a CLI test may have stopped it propagating to the root.
    zerg_log = logging.getLogger("zerg")
    zerg_log.addHandler(caplog.handler)

    try:
        with pytest.raises(DeliveryFailed) as failed:
            await asyncio.wait_for(deliver(database, run_id, policy), HANG_S)
    finally:
        zerg_log.removeHandler(caplog.handler)

    assert expected in str(failed.value)
    assert f"{base.removeprefix('http://')}/fail?***#***" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text
        assert secret not in str(failed.value)


async def test_userinfo_is_sent_as_basic_auth(database: Database, receiver: str) -> None:
    authorizations.clear()
    run_id = finished_run(database, receiver.replace("://", "://me:p%40ss@") + "/auth")

    await asyncio.wait_for(deliver(database, run_id, LOOPBACK), HANG_S)

    assert authorizations == ["Basic " + base64.b64encode(b"me:p@ss").decode()]


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://hooks.example.com/run/7", "https://hooks.example.com/run/7"),
        ("https://u:p@example.com:8443/h?token=t#f", "https://***@example.com:8443/h?***#***"),
        ("https://u@example.com/h", "https://***@example.com/h"),
        ("https://a@b:c@example.com/h", "https://***@example.com/h"),
        ("http://example.com/h?", "http://example.com/h"),
        ("http://[::1/h?token=t", "<invalid URL>"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
