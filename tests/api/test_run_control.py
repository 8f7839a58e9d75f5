"""Per-agent concurrency, cancel and timeouts: runs never overlap and never get stuck."""

import asyncio
import importlib
import itertools
import re
import time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from tests.support.openai_server import FakeOpenAI, Hang, Text
from tests.support.waiting import wait_for


def create_agent(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "a",
        "model": "scripted:demo",
        "task_instructions": "6 * 7?",
        "tools": ["calculator"],
        **fields,
    }
    response = client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def hanging_agent(client: httpx.Client, server: FakeOpenAI, **fields: Any) -> dict[str, Any]:
    return create_agent(
        client,
        model="openai:gpt-test",
        tools=[],
        config={"base_url": f"{server.base_url}/v1", "max_retries": 0},
        **fields,
    )


def start_hanging_run(
    client: httpx.Client, server: FakeOpenAI, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An agent and its run, once the run's model call hangs on `server`."""
    server.enqueue(Hang())
    agent = hanging_agent(client, server, **fields)
    run: dict[str, Any] = client.post(f"/api/agents/{agent['id']}/task").json()
    wait_for_model_call(server)
    return agent, run


def wait_for_status(client: httpx.Client, run_id: int, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        run = dict(client.get(f"/api/runs/{run_id}").json())
        return run if run["status"] in statuses else None

    return wait_for(reached, f"run {run_id} to reach {statuses}", timeout_s=20)


def wait_for_model_call(server: FakeOpenAI) -> None:
    wait_for(server.count, "a model call", timeout_s=20)


async def trigger_many(base_url: str, agent_id: int, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        return await asyncio.gather(
            *(http.post(f"/api/agents/{agent_id}/task") for _ in range(count))
        )


def test_reject_gives_one_run_and_409s_under_simultaneous_triggers(
    client: httpx.Client, base_url: str, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Text("done")))
    agent = hanging_agent(client, openai_server)

    responses = asyncio.run(trigger_many(base_url, agent["id"], 100))

    accepted = [r for r in responses if r.status_code == 202]
    rejected = [r for r in responses if r.status_code == 409]
    assert len(accepted) == 1 and len(rejected) == 99
    run_id = accepted[0].json()["id"]
    assert {r.json()["code"] for r in rejected} == {"agent_busy"}
    busy = re.compile(rf"busy with run {run_id} \((queued|running)\)")
    assert all(busy.search(r.json()["detail"]) for r in rejected)
    assert len(client.get("/api/runs").json()["items"]) == 1

    wait_for_model_call(openai_server)  # a release before the call arrives would not reach it
    openai_server.release()
    assert wait_for_status(client, run_id, "succeeded")["status"] == "succeeded"
    # The agent is free again.
    openai_server.set_policy(lambda _body: Text("again"))
    assert client.post(f"/api/agents/{agent['id']}/task").status_code == 202


def test_queue_runs_one_at_a_time_in_trigger_order(client: httpx.Client, base_url: str) -> None:
    agent = create_agent(client, concurrency="queue")

    responses = asyncio.run(trigger_many(base_url, agent["id"], 100))

    assert {r.status_code for r in responses} == {202}
    ids = sorted(r.json()["id"] for r in responses)
    runs = [wait_for_status(client, run_id, "succeeded") for run_id in ids]
    by_start = sorted(runs, key=lambda r: r["started_at"])
    for earlier, later in itertools.pairwise(by_start):
        assert earlier["finished_at"] <= later["started_at"], (earlier, later)
    assert [r["id"] for r in by_start] == ids
    assert client.get(f"/api/agents/{agent['id']}").json()["status"] == "idle"


def test_cancel_interrupts_the_in_flight_model_call(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    agent, run = start_hanging_run(client, openai_server)

    started = time.monotonic()
    response = client.post(f"/api/runs/{run['id']}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    while openai_server.requests[0].state == "pending" and time.monotonic() - started < 5:
        time.sleep(0.02)
    assert openai_server.requests[0].state == "cut_off"
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + 5
    while client.get(f"/api/agents/{agent['id']}").json()["status"] != "idle":
        assert time.monotonic() < deadline, "agent did not return to idle"
        time.sleep(0.02)
    final = client.get(f"/api/runs/{run['id']}").json()
    assert final["status"] == "cancelled" and final["finished_at"] is not None

    again = client.post(f"/api/runs/{run['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "run_finished"


def test_cancel_a_queued_run_never_starts_it(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Text("first")))
    agent = hanging_agent(client, openai_server, concurrency="queue")
    first = client.post(f"/api/agents/{agent['id']}/task").json()
    wait_for_model_call(openai_server)
    second = client.post(f"/api/agents/{agent['id']}/task").json()

    cancelled = client.post(f"/api/runs/{second['id']}/cancel").json()
    openai_server.release()

    assert cancelled["status"] == "cancelled"
    assert wait_for_status(client, first["id"], "succeeded")["status"] == "succeeded"
    time.sleep(0.3)  # the queue would have started it by now
    final = client.get(f"/api/runs/{second['id']}").json()
    assert final["status"] == "cancelled" and final["started_at"] is None
    assert final["thread_id"] is None
    assert openai_server.count() == 1


def test_timeout_ends_the_run_timed_out_and_says_the_limit(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    # The server runs in this process: load the OpenAI client now, so that the 1 s the run has
    # is not spent loading it (Zerg loads a provider's SDK on its first call).
    importlib.import_module("langchain_openai")
    openai_server.enqueue(Hang())
    agent = hanging_agent(client, openai_server, timeout_s=1)

    run = client.post(f"/api/agents/{agent['id']}/task?wait=true").json()

    assert run["status"] == "timed_out"
    assert "timeout_s=1" in run["error"]
    after = client.get(f"/api/agents/{agent['id']}").json()
    assert after["status"] == "error" and "timeout_s=1" in after["last_error"]
    deadline = time.monotonic() + 5
    while openai_server.requests[0].state == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)  # the server notices the hang-up a moment later
    assert openai_server.requests[0].state == "cut_off"


def test_cancel_unknown_run_is_404(client: httpx.Client) -> None:
    response = client.post("/api/runs/12345/cancel")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_cancel_frees_the_agent_in_the_same_commit(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    agent, run = start_hanging_run(client, openai_server)
    assert client.get(f"/api/agents/{agent['id']}").json()["status"] == "running"

    cancelled = client.post(f"/api/runs/{run['id']}/cancel").json()

    # No reader ever sees the cancelled run beside a running agent: read at once, no waiting.
    assert cancelled["status"] == "cancelled"
    assert client.get(f"/api/agents/{agent['id']}").json()["status"] == "idle"


def test_a_trigger_right_after_a_cancel_never_overlaps_the_cut_off_call(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    agent, first = start_hanging_run(client, openai_server)
    openai_server.set_policy(lambda _body: Text("second"))

    assert client.post(f"/api/runs/{first['id']}/cancel").status_code == 200
    second = client.post(f"/api/agents/{agent['id']}/task?wait=true&timeout_s=20")

    assert second.status_code == 200 and second.json()["status"] == "succeeded"
    cut_off, answered = openai_server.requests
    assert cut_off.state == "cut_off" and answered.state == "completed"
    assert cut_off.hung_up_at is not None and cut_off.hung_up_at <= answered.arrived_at


def test_a_running_run_does_not_poll_the_database(
    app: FastAPI, client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    """A cancel reaches the run as an event: a run waiting on its model costs no queries."""
    _agent, run = start_hanging_run(client, openai_server)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "runs" in statement:
            statements.append(statement)

    engine = app.state.database.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        time.sleep(1.5)  # six of the old 0.25 s status polls
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert statements == []
    assert client.post(f"/api/runs/{run['id']}/cancel").json()["status"] == "cancelled"
    wait_for(lambda: openai_server.requests[0].state == "cut_off", "the call to be cut off")
