"""Run notifications: a finished run is POSTed to the agent's notify_url, signed per Standard
Webhooks, retried after failures, and refused by the SSRF guard for private addresses."""

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook

from tests.support.server import serve_in_thread
from tests.support.waiting import wait_for
from zerg.api.app import create_app
from zerg.settings import Settings


class Receiver:
    """A webhook receiver on loopback that fails its first `failures` deliveries."""

    def __init__(self) -> None:
        self.failures = 0
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> Response:
        self.deliveries.append((await request.body(), dict(request.headers)))
        if len(self.deliveries) <= self.failures:
            return Response(status_code=500)
        return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with serve_in_thread(hook.app) as url:
        yield hook, f"{url}/hook"


@pytest.fixture
def zerg(settings: Settings) -> Iterator[httpx.Client]:
    """Zerg allowed to reach loopback, where the test receiver listens."""
    allowed = settings.model_copy(update={"http_allowed_networks": "127.0.0.1/32"})
    with serve_in_thread(create_app(allowed)) as url, httpx.Client(base_url=url) as client:
        yield client


def agent_notifying(client: httpx.Client, url: str) -> dict[str, Any]:
    body = {
        "name": "n",
        "model": "scripted:demo",
        "task_instructions": "6 * 7?",
        "tools": ["calculator"],
        "notify_url": url,
    }
    response = client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_finished_run_is_notified_signed_and_retried(
    zerg: httpx.Client, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    hook.failures = 2
    agent = agent_notifying(zerg, url)
    secret = zerg.get(f"/api/agents/{agent['id']}/notify-secret").json()["secret"]

    run = zerg.post(f"/api/agents/{agent['id']}/task?wait=true").json()
    wait_for(lambda: len(hook.deliveries) == 3, "three deliveries")

    assert secret.startswith("whsec_") and agent["notify_url"] == url
    ids = {headers["webhook-id"] for _, headers in hook.deliveries}
    assert ids == {f"run-{run['id']}-finished"}  # the same id on every attempt
    body, headers = hook.deliveries[-1]
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "run.finished"
    assert event["data"]["run"]["id"] == run["id"]
    assert event["data"]["run"]["status"] == "succeeded"
    assert event["data"]["agent"] == {"id": agent["id"], "name": "n"}
    time.sleep(0.5)
    assert len(hook.deliveries) == 3  # delivered: no more attempts


def test_no_notify_url_no_secret(zerg: httpx.Client) -> None:
    agent = zerg.post("/api/agents", json={"name": "q", "model": "scripted:demo"}).json()

    response = zerg.get(f"/api/agents/{agent['id']}/notify-secret")

    assert response.status_code == 404 and response.json()["code"] == "no_notify_url"
    bad = zerg.patch(f"/api/agents/{agent['id']}", json={"notify_url": "ftp://example.com/x"})
    assert bad.status_code == 422 and "notify_url" in bad.json()["detail"]


def test_the_guard_refuses_a_private_notify_url(
    settings: Settings, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    # Default settings: loopback is not allowed, so the receiver must never be reached.
    with serve_in_thread(create_app(settings)) as base, httpx.Client(base_url=base) as client:
        agent = agent_notifying(client, url)
        run = client.post(f"/api/agents/{agent['id']}/task?wait=true").json()
        time.sleep(1.5)  # the first attempt and its first retry

    assert run["status"] == "succeeded"  # a failed notice does not fail the run
    assert hook.deliveries == []
