"""Task runs through the HTTP API, with the real OpenAI client against a local fake LLM server."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from tests.support.openai_server import FakeOpenAI, Text, ToolCall, Usage, tool_then_answer
from zerg.db import Database
from zerg.events import Event, EventType
from zerg.models import Agent, Message


def create_agent(client: httpx.Client, openai_server: FakeOpenAI, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "calc",
        "model": "openai:gpt-4o-mini",
        "system_instructions": "You are precise.",
        "task_instructions": "What is 6 * 7?",
        "tools": ["calculator"],
        "config": {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0},
        **fields,
    }
    response = client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def run_and_wait(client: httpx.Client, agent_id: int, **headers: str) -> dict[str, Any]:
    response = client.post(f"/api/agents/{agent_id}/task?wait=true", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_task_run_stores_every_message_with_usage(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(
        ToolCall("calculator", {"expression": "6 * 7"}, call_id="call_1", usage=Usage(20, 7)),
        Text("The answer is 42.", usage=Usage(30, 5)),
    )
    agent = create_agent(client, openai_server)

    run = run_and_wait(client, agent["id"])

    assert run["status"] == "succeeded"
    assert run["trigger"] == "manual"
    assert (run["input_tokens"], run["output_tokens"], run["total_tokens"]) == (50, 12, 62)
    assert run["cost_usd"] is not None and run["cost_usd"] > 0
    assert run["started_at"] and run["finished_at"] and run["duration_ms"] >= 0
    messages = client.get(f"/api/threads/{run['thread_id']}/messages").json()["items"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    system, user, call, tool, answer = messages
    assert system["content"] == "You are precise."
    assert user["content"] == "What is 6 * 7?" and user["processed"] is True
    assert call["tool_calls"] == [
        {"id": "call_1", "name": "calculator", "args": {"expression": "6 * 7"}}
    ]
    assert call["metadata"]["model"] == "openai:gpt-4o-mini"
    assert (call["metadata"]["input_tokens"], call["metadata"]["output_tokens"]) == (20, 7)
    assert call["metadata"]["latency_ms"] >= 0
    assert tool["tool_call_id"] == "call_1" and tool["name"] == "calculator"
    assert "42" in tool["content"]
    assert answer["content"] == "The answer is 42."
    costs = [call["metadata"]["cost_usd"], answer["metadata"]["cost_usd"]]
    assert run["cost_usd"] == pytest.approx(sum(costs))
    # The model saw the tool's real output in its second call.
    second = openai_server.requests[1].body["messages"]
    assert second[-1]["role"] == "tool" and "42" in second[-1]["content"]
    thread = client.get(f"/api/threads/{run['thread_id']}").json()
    assert thread["thread_type"] == "manual" and thread["active"] is False
    assert "UTC" in thread["title"]
    agent_after = client.get(f"/api/agents/{agent['id']}").json()
    assert agent_after["status"] == "idle" and agent_after["last_run_at"] is not None


def test_trigger_answers_202_and_run_finishes(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.set_policy(tool_then_answer("calculator", {"expression": "1+1"}))
    agent = create_agent(client, openai_server)

    response = client.post(f"/api/agents/{agent['id']}/task")

    assert response.status_code == 202
    run = response.json()
    assert run["status"] in ("queued", "running", "succeeded")
    assert run["agent_id"] == agent["id"]
    listed = client.get("/api/runs", params={"agent_id": agent["id"]}).json()["items"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_idempotency_key_returns_the_same_run(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.set_policy(tool_then_answer("calculator", {"expression": "1+1"}))
    agent = create_agent(client, openai_server)

    first = run_and_wait(client, agent["id"], **{"Idempotency-Key": "abc"})
    second = client.post(f"/api/agents/{agent['id']}/task", headers={"Idempotency-Key": "abc"})

    assert second.status_code == 202
    assert second.json()["id"] == first["id"]
    assert len(client.get("/api/runs").json()["items"]) == 1
    assert openai_server.count() == 2


def test_agent_without_task_instructions_gets_422_and_nothing_is_created(
    client: httpx.Client, openai_server: FakeOpenAI, database: Database
) -> None:
    agent = create_agent(client, openai_server, task_instructions=None)

    response = client.post(f"/api/agents/{agent['id']}/task")

    assert response.status_code == 422
    assert response.json()["code"] == "no_task_instructions"
    assert client.get("/api/runs").json()["items"] == []
    assert client.get("/api/threads").json()["items"] == []
    assert openai_server.count() == 0


def test_unknown_agent_gets_404(client: httpx.Client) -> None:
    response = client.post("/api/agents/999/task")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("error", "the model server answered 500"),
        ("bad_json", "not valid JSON"),
        ("unknown_model", "does not know this model (404); check the agent's model name"),
    ],
)
def test_model_failure_fails_the_run_and_the_next_good_run_recovers(
    client: httpx.Client, openai_server: FakeOpenAI, script: str, expected: str
) -> None:
    if script == "error":
        openai_server.reply_error(500)
    elif script == "unknown_model":
        openai_server.reply_error(
            404,
            {
                "error": {
                    "message": "The model does not exist",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
        )
    else:
        openai_server.reply_bad_json()
    agent = create_agent(client, openai_server)

    failed = run_and_wait(client, agent["id"])

    assert failed["status"] == "failed"
    assert expected in failed["error"]
    after = client.get(f"/api/agents/{agent['id']}").json()
    assert after["status"] == "error"
    assert after["last_error"] == failed["error"]
    assert "Traceback" not in failed["error"]

    openai_server.set_policy(tool_then_answer("calculator", {"expression": "2*3"}))
    ok = run_and_wait(client, agent["id"])

    assert ok["status"] == "succeeded"
    recovered = client.get(f"/api/agents/{agent['id']}").json()
    assert recovered["status"] == "idle" and recovered["last_error"] is None


def test_missing_api_key_names_the_fix(client: httpx.Client) -> None:
    response = client.post(
        "/api/agents",
        json={"name": "nokey", "model": "openai:gpt-4o-mini", "task_instructions": "hi"},
    )
    run = run_and_wait(client, response.json()["id"])

    assert run["status"] == "failed"
    assert "set OPENAI_API_KEY" in run["error"]


def test_a_failing_tool_becomes_a_tool_message_and_the_run_goes_on(
    client: httpx.Client, openai_server: FakeOpenAI, database: Database
) -> None:
    openai_server.enqueue(
        ToolCall("calculator", {"expression": "1 / 0"}, call_id="c1"),
        Text("Cannot divide by zero."),
    )
    agent = create_agent(client, openai_server)

    run = run_and_wait(client, agent["id"])

    assert run["status"] == "succeeded"
    with database.session() as session:
        tool = session.scalars(
            select(Message).where(Message.thread_id == run["thread_id"], Message.role == "tool")
        ).one()
    assert tool.tool_call_id == "c1"
    assert "Error" in tool.content and "zero" in tool.content.lower()


def test_events_follow_the_run_and_are_published_after_their_commit(
    client: httpx.Client, openai_server: FakeOpenAI, app: FastAPI, database: Database
) -> None:
    openai_server.set_policy(tool_then_answer("calculator", {"expression": "6*7"}))
    agent = create_agent(client, openai_server)
    seen: list[tuple[str, dict[str, Any]]] = []
    ids: list[int | None] = []
    stored_status: list[str] = []

    def listen(event: Event) -> None:
        seen.append((event.type.value, event.data))
        ids.append(event.id)
        if event.type == EventType.AGENT_UPDATED:
            # Whoever hears the event and reads the database sees what the event says.
            with database.session() as session:
                stored = session.get(Agent, event.data["id"])
                assert stored is not None
                stored_status.append(stored.status)

    app.state.bus.add_listener(listen)
    run = run_and_wait(client, agent["id"])

    kinds = [kind for kind, _ in seen]
    assert kinds == [
        "run_created",
        "agent_updated",
        "run_updated",
        "thread_created",
        "thread_message_created",
        "thread_message_created",
        "thread_message_created",
        "thread_message_created",
        "thread_message_created",
        "agent_updated",
        "run_updated",
    ]
    # Every event is stored, and its id says in which order.
    assert all(i is not None for i in ids) and ids == sorted(set(ids))  # type: ignore[type-var]
    agent_events = [data for kind, data in seen if kind == "agent_updated"]
    assert agent_events == [
        {"id": agent["id"], "status": "running"},
        {"id": agent["id"], "status": "idle", "thread_id": run["thread_id"]},
    ]
    assert stored_status == ["running", "idle"]
    assert [data["role"] for kind, data in seen if kind == "thread_message_created"] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert seen[0][1]["status"] == "queued" and seen[-1][1]["status"] == "succeeded"
    assert seen[2][1]["thread_id"] == run["thread_id"]


def test_unknown_scripted_model_names_the_ones_that_exist(client: httpx.Client) -> None:
    agent = client.post(
        "/api/agents", json={"name": "s", "model": "scripted:nope", "task_instructions": "hi"}
    ).json()

    run = run_and_wait(client, agent["id"])

    assert run["status"] == "failed"
    assert "unknown scripted model 'nope'" in run["error"]
    assert "scripted:demo" in run["error"]


def test_a_model_without_a_known_price_has_no_cost_not_zero(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.set_policy(tool_then_answer("calculator", {"expression": "1+1"}))
    agent = create_agent(client, openai_server, model="openai:my-local-llama")

    run = run_and_wait(client, agent["id"])

    assert run["status"] == "succeeded"
    assert run["total_tokens"] > 0
    assert run["cost_usd"] is None
