"""GET /metrics: run counters from events, queue gauges from the database, the process's own
metrics, and who may read them."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from websockets.sync.client import connect

from tests.api.test_auth import add_user, bearer, wait_for_auth_mode
from tests.api.test_run_control import hanging_agent, wait_for_model_call, wait_for_status
from tests.api.test_webhooks import make_agent, make_trigger, standard_headers
from tests.api.test_ws import ws_url
from tests.support.openai_server import FakeOpenAI, Hang, Text
from tests.support.server import serve_in_thread
from tests.support.waiting import wait_for
from zerg.api.app import create_app
from zerg.db import Database
from zerg.settings import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: httpx.Client, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape_until(client: httpx.Client, done: Callable[[Samples], bool], what: str) -> Samples:
    def scraped() -> Samples | None:
        samples = scrape(client)
        return samples if done(samples) else None

    return wait_for(scraped, what)


def run_task(client: httpx.Client, agent_id: int) -> dict[str, Any]:
    response = client.post(f"/api/agents/{agent_id}/task?wait=true")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_finished_runs_are_counted_by_trigger_and_status(client: httpx.Client) -> None:
    demo = make_agent(client, model="scripted:demo", tools=["calculator"])
    broken = make_agent(client, name="broken", model="scripted:error")
    runs = [run_task(client, demo["id"]), run_task(client, demo["id"])]
    runs.append(run_task(client, broken["id"]))
    assert [r["status"] for r in runs] == ["succeeded", "succeeded", "failed"]
    trigger = runs[0]["trigger"]

    samples = scrape_until(
        client,
        lambda s: value(s, "zerg_runs_finished_total", trigger=trigger, status="failed") == 1,
        "the failed run's event",
    )

    assert value(samples, "zerg_runs_created_total", trigger=trigger) == 3
    assert value(samples, "zerg_runs_started_total", trigger=trigger) == 3
    ok = {"trigger": trigger, "status": "succeeded"}
    assert value(samples, "zerg_runs_finished_total", **ok) == 2
    assert value(samples, "zerg_run_duration_seconds_count", **ok) == 2
    assert value(samples, "zerg_run_duration_seconds_sum", **ok) == pytest.approx(
        sum(r["duration_ms"] for r in runs[:2]) / 1000
    )
    failed = {"trigger": trigger, "status": "failed"}
    assert value(samples, "zerg_run_duration_seconds_count", **failed) == 1
    for kind in ("input", "output"):
        tokens = value(samples, "zerg_run_tokens_total", trigger=trigger, kind=kind)
        assert tokens == sum(r[f"{kind}_tokens"] for r in runs) > 0
    assert value(samples, "zerg_runs_queued") == 0
    assert value(samples, "zerg_runs_running") == 0
    assert value(samples, "zerg_oldest_queued_run_age_seconds") == 0
    # Owner-neutral: no label names an agent, a thread or a user.
    labels = {name for (_, pairs) in samples for name, _ in pairs}
    assert not labels & {"agent_id", "agent", "owner", "user", "thread_id"}


def test_the_queue_gauges_read_the_waiting_runs(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Text("first")), Text("second"))
    agent = hanging_agent(client, openai_server, concurrency="queue")
    first = client.post(f"/api/agents/{agent['id']}/task").json()
    wait_for_model_call(openai_server)
    second = client.post(f"/api/agents/{agent['id']}/task").json()
    assert second["status"] == "queued"

    samples = scrape(client)

    assert value(samples, "zerg_runs_queued") == 1
    assert value(samples, "zerg_runs_running") == 1
    assert value(samples, "zerg_oldest_queued_run_age_seconds") >= 0
    openai_server.release()
    wait_for_status(client, first["id"], "succeeded")
    wait_for_status(client, second["id"], "succeeded")
    assert value(scrape(client), "zerg_runs_queued") == 0


def test_websocket_connections_are_counted(client: httpx.Client, base_url: str) -> None:
    connections = lambda s: value(s, "zerg_websocket_connections")  # noqa: E731
    with connect(ws_url(base_url), proxy=None), connect(ws_url(base_url), proxy=None):
        scrape_until(client, lambda s: connections(s) == 2, "2 connections")
    scrape_until(client, lambda s: connections(s) == 0, "none")


def test_refused_webhook_deliveries_are_counted_by_reason(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b'{"event": "ping"}'
    headers = standard_headers(trigger["secret"], body)
    tampered = {**headers, "webhook-signature": headers["webhook-signature"][:-4] + "AAAA"}

    assert client.post(trigger["url"], content=body, headers=tampered).status_code == 401
    assert client.post(trigger["url"], content=body, headers=tampered).status_code == 401
    assert client.post("/hooks/nope", content=body, headers=headers).status_code == 404
    assert client.post(trigger["url"], content=body, headers=headers).status_code == 202

    samples = scrape(client)
    assert value(samples, "zerg_webhook_rejections_total", reason="invalid_signature") == 2
    assert value(samples, "zerg_webhook_rejections_total", reason="not_found") == 1
    rejections = [k for k in samples if k[0] == "zerg_webhook_rejections_total"]
    assert len(rejections) == 2


def test_the_event_loop_lag_is_measured(client: httpx.Client) -> None:
    samples = scrape_until(
        client, lambda s: value(s, "zerg_event_loop_lag_seconds_count") >= 2, "two measurements"
    )

    assert value(samples, "zerg_event_loop_lag_seconds_sum") >= 0
    assert value(samples, "zerg_event_loop_lag_seconds_bucket", le="+Inf") >= 2
    assert ("zerg_event_loop_lag_last_seconds", ()) in samples
    assert value(samples, "process_cpu_seconds_total") > 0


def test_local_mode_serves_metrics_to_loopback_hosts_only(client: httpx.Client) -> None:
    scrape(client, Host="localhost:8000")

    rebound = client.get("/metrics", headers={"Host": "attacker.example"})

    assert rebound.status_code == 421
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_auth_mode_serves_metrics_to_admins_and_the_metrics_token(
    client: httpx.Client, database: Database
) -> None:
    admin = add_user(database, "ada")
    member = add_user(database, "bob", admin=False)
    wait_for_auth_mode(client)

    assert client.get("/metrics").status_code == 401
    refused = client.get("/metrics", headers=bearer(member))
    assert refused.status_code == 403
    assert refused.json()["code"] == "metrics_forbidden"
    assert client.get("/metrics", headers=bearer("zerg_" + "x" * 43)).status_code == 401
    scrape(client, **bearer(admin))


@pytest.mark.parametrize("setting", ["token", "public"])
def test_a_setting_opens_metrics_to_a_scraper(
    settings: Settings, database: Database, tmp_path: Path, setting: str
) -> None:
    token = "scrape-me-" + "s" * 20
    if setting == "token":
        settings = settings.model_copy(update={"metrics_token": SecretStr(token)})
    else:
        settings = settings.model_copy(update={"metrics_public": True})
    add_user(database, "ada")
    app: FastAPI = create_app(settings)

    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        wait_for_auth_mode(client)
        if setting == "token":
            assert client.get("/metrics").status_code == 401
            assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
            scrape(client, **bearer(token))
            assert client.get("/api/agents", headers=bearer(token)).status_code == 401
        else:
            scrape(client)
            scrape(client, Host="zerg.example.com")
