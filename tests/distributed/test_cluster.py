"""Two API replicas and two workers on one PostgreSQL database share the runs and the events."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx

from tests.distributed.conftest import Cluster
from tests.support.openai_server import FakeOpenAI, Hang, Text
from tests.support.waiting import wait_for
from zerg.events import Event, EventBus, EventType
from zerg.events.postgres import PostgresRelay
from zerg.services.task_runs import CANCEL_SAFETY_POLL_S


def trigger(url: str, agent_id: int, *, wait: bool = True) -> httpx.Response:
    return httpx.post(
        f"{url}/api/agents/{agent_id}/task", params={"wait": wait, "timeout_s": 30}, timeout=40
    )


def test_runs_from_either_api_execute_on_both_workers(
    cluster: Cluster, openai_server: FakeOpenAI
) -> None:
    # Each run's model call takes a moment: with one run per worker at a time, two
    # simultaneous runs need both workers.
    openai_server.enqueue(*[Hang(seconds=1.0, then=Text("done")) for _ in range(2)])
    agents = [cluster.create_agent(f"agent {i}") for i in (1, 2)]
    seen: list[Event] = []
    lock = threading.Lock()
    # A subscriber in a third process: every event reaches it, whoever published it.
    bus = EventBus()

    def record(event: Event) -> None:
        with lock:
            seen.append(event)

    bus.add_listener(record)
    relay = PostgresRelay(bus, cluster.database.url)
    relay.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda pair: trigger(pair[0].url, pair[1]["id"]),
                    zip(cluster.apis, agents, strict=True),
                )
            )
        # wait=true through an API replica answers when a worker has finished the run.
        assert [a.status_code for a in answers] == [200, 200]
        runs = [a.json() for a in answers]
        assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
        assert {cluster.executor_of(r["id"]) for r in runs} == {"w1", "w2"}
        for api in cluster.apis:
            for agent in agents:
                assert httpx.get(f"{api.url}/api/agents/{agent['id']}").json()["status"] == "idle"

        # AGENT_UPDATED from the workers reached this process: running, then idle.
        def agent_statuses(agent_id: int) -> list[str]:
            with lock:
                return [
                    e.data["status"]
                    for e in seen
                    if e.type == EventType.AGENT_UPDATED and e.data["id"] == agent_id
                ]

        for agent in agents:
            wait_for(lambda a=agent: agent_statuses(a["id"]) == ["running", "idle"], timeout_s=5)
        with lock:
            types = {e.type for e in seen}
        assert {EventType.RUN_CREATED, EventType.RUN_UPDATED, EventType.THREAD_CREATED} <= types
    finally:
        relay.stop()


def test_reject_and_queue_hold_across_replicas(cluster: Cluster, openai_server: FakeOpenAI) -> None:
    openai_server.enqueue(*[Hang(seconds=0.5, then=Text("done")) for _ in range(3)])
    busy = cluster.create_agent("busy")  # concurrency: reject
    first = trigger(cluster.apis[0].url, busy["id"], wait=False)
    assert first.status_code == 202
    second = trigger(cluster.apis[1].url, busy["id"], wait=False)
    assert second.status_code == 409
    assert second.json()["code"] == "agent_busy"

    queued = cluster.create_agent("one at a time", concurrency="queue")
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda api: trigger(api.url, queued["id"]), cluster.apis))
    # Triggered at the same moment on two replicas, either may be recorded (and run) first.
    runs: list[dict[str, Any]] = sorted((a.json() for a in answers), key=lambda r: r["started_at"])
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    # One at a time per agent, whichever workers ran them.
    assert datetime.fromisoformat(runs[1]["started_at"]) >= datetime.fromisoformat(
        runs[0]["finished_at"]
    )
    wait_for(
        lambda: (
            httpx.get(f"{cluster.apis[1].url}/api/runs/{first.json()['id']}").json()["status"]
            == "succeeded"
        )
    )


def test_a_cancel_on_any_replica_cuts_off_the_call_on_the_worker(
    cluster: Cluster, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang())
    agent = cluster.create_agent("hangs")
    run = trigger(cluster.apis[0].url, agent["id"], wait=False).json()
    wait_for(openai_server.count, "the worker's model call")

    cancelled = httpx.post(f"{cluster.apis[1].url}/api/runs/{run['id']}/cancel").json()

    assert cancelled["status"] == "cancelled"
    assert httpx.get(f"{cluster.apis[0].url}/api/agents/{agent['id']}").json()["status"] == "idle"
    # The cancel reaches the worker over LISTEN/NOTIFY, well before its safety poll would.
    wait_for(
        lambda: openai_server.requests[0].state == "cut_off",
        "the worker to cut off the call",
        timeout_s=CANCEL_SAFETY_POLL_S / 2,
    )
