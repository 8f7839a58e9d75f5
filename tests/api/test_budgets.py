"""Per-agent budgets: a run stops at the model call that would pass a limit, a spent day refuses
triggers with 429 `budget_exceeded` until the next UTC day. Real OpenAI client, fake LLM server."""

import json
from typing import Any

import httpx
import pytest

from tests.api.helpers import FrozenClock, assert_error
from tests.api.test_tasks import create_agent, run_and_wait
from tests.api.test_webhooks import fire, github_headers, make_trigger, wait_finished
from tests.support.openai_server import FakeOpenAI, Text, ToolCall, Usage
from zerg.agents.pricing import cost_usd


def roles(client: httpx.Client, run: dict[str, Any]) -> list[str]:
    """The roles of the messages in the thread of `run` (a run, or a thread as `thread_id`)."""
    messages = client.get(f"/api/threads/{run['thread_id']}/messages").json()["items"]
    return [message["role"] for message in messages]


def spend_the_day(client: httpx.Client, server: FakeOpenAI, **limits: Any) -> dict[str, Any]:
    """An agent whose one run (110 tokens) used up its daily budget of 100 tokens."""
    server.enqueue(Text("Done.", usage=Usage(80, 30)))
    agent = create_agent(client, server, tools=[], max_day_tokens=100, **limits)
    run = run_and_wait(client, agent["id"])
    assert run["status"] == "succeeded" and run["total_tokens"] == 110
    return agent


def test_a_run_that_passes_its_token_limit_stops_before_the_next_model_call(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(
        ToolCall("calculator", {"expression": "6 * 7"}, call_id="call_1", usage=Usage(40, 20)),
        Text("The answer is 42.", usage=Usage(5, 5)),
    )
    agent = create_agent(client, openai_server, max_run_tokens=50)

    run = run_and_wait(client, agent["id"])

    assert run["status"] == "failed" and run["error_code"] == "budget_exceeded"
    for fragment in ("60 tokens", "limit of 50", "max_run_tokens", "before its next model call"):
        assert fragment in run["error"]
    assert (run["input_tokens"], run["output_tokens"], run["total_tokens"]) == (40, 20, 60)
    assert openai_server.count() == 1  # the second model call never happened
    # Everything up to the boundary is stored: the call and the tool's answer to it.
    assert roles(client, run) == ["system", "user", "assistant", "tool"]
    after = client.get(f"/api/agents/{agent['id']}").json()
    assert after["status"] == "error" and after["last_error"] == run["error"]


def test_a_run_within_its_limits_succeeds_and_other_failures_have_no_code(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Text("Fine.", usage=Usage(10, 5)))
    agent = create_agent(client, openai_server, tools=[], max_run_tokens=1000)

    run = run_and_wait(client, agent["id"])

    assert run["status"] == "succeeded" and run["error_code"] is None
    assert run["total_tokens"] == 15


def test_a_run_that_passes_its_cost_limit_stops(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    price = cost_usd("openai:gpt-4o-mini", 100_000, 0)
    assert price is not None and price > 0.01  # $0.15 per million input tokens
    openai_server.enqueue(
        ToolCall("calculator", {"expression": "1 + 1"}, usage=Usage(100_000, 0)),
        Text("never asked"),
    )
    agent = create_agent(client, openai_server, max_run_cost_usd=0.01)

    run = run_and_wait(client, agent["id"])

    assert run["status"] == "failed" and run["error_code"] == "budget_exceeded"
    assert "max_run_cost_usd" in run["error"] and "$0.01 " in run["error"]
    assert run["cost_usd"] == pytest.approx(price)
    assert openai_server.count() == 1


def test_a_spent_day_refuses_triggers_until_the_next_utc_day(
    client: httpx.Client, openai_server: FakeOpenAI, clock: FrozenClock
) -> None:
    agent = spend_the_day(client, openai_server)

    refused = client.post(f"/api/agents/{agent['id']}/task")

    assert_error(refused, 429, "budget_exceeded", "110 tokens", "100", "max_day_tokens", "UTC")
    assert len(client.get("/api/runs", params={"agent_id": agent["id"]}).json()["items"]) == 1
    usage = client.get(f"/api/agents/{agent['id']}/usage").json()
    assert usage["spent"] is True and usage["tokens"] == 110 and usage["max_day_tokens"] == 100
    assert usage["day"] == "2026-03-04" and usage["since"] == "2026-03-04T00:00:00Z"
    # A chat turn of the agent is refused too, and its message is not stored.
    thread = client.post("/api/threads", json={"agent_id": agent["id"]}).json()
    turn = client.post(f"/api/threads/{thread['id']}/messages", json={"content": "Hi"})
    assert_error(turn, 429, "budget_exceeded", "max_day_tokens")
    assert "user" not in roles(client, {"thread_id": thread["id"]})

    clock.now = clock.now.replace(hour=23, minute=59, second=59)
    assert client.post(f"/api/agents/{agent['id']}/task").status_code == 429
    clock.advance(seconds=1)  # midnight UTC: a new day, a new budget
    openai_server.enqueue(Text("Again.", usage=Usage(1, 1)))
    again = run_and_wait(client, agent["id"])

    assert again["status"] == "succeeded"
    usage = client.get(f"/api/agents/{agent['id']}/usage").json()
    assert usage["spent"] is False and usage["tokens"] == 2 and usage["day"] == "2026-03-05"


def test_a_known_idempotency_key_still_returns_its_run_when_the_day_is_spent(
    client: httpx.Client, openai_server: FakeOpenAI, clock: FrozenClock
) -> None:
    openai_server.enqueue(Text("Done.", usage=Usage(80, 30)))
    agent = create_agent(client, openai_server, tools=[], max_day_tokens=100)
    first = run_and_wait(client, agent["id"], **{"Idempotency-Key": "nightly"})

    again = client.post(f"/api/agents/{agent['id']}/task", headers={"Idempotency-Key": "nightly"})

    assert again.status_code == 202 and again.json()["id"] == first["id"]


def test_the_day_s_usage_includes_the_running_run(
    client: httpx.Client, openai_server: FakeOpenAI, clock: FrozenClock
) -> None:
    openai_server.enqueue(
        Text("First.", usage=Usage(30, 30)),
        ToolCall("calculator", {"expression": "2 + 2"}, usage=Usage(30, 20)),
        Text("never asked"),
    )
    agent = create_agent(client, openai_server, max_day_tokens=100)
    assert run_and_wait(client, agent["id"])["status"] == "succeeded"  # 60 of 100

    second = run_and_wait(client, agent["id"])  # starts under the limit, passes it mid-way

    assert second["status"] == "failed" and second["error_code"] == "budget_exceeded"
    assert "110 tokens today" in second["error"] and "max_day_tokens" in second["error"]
    assert openai_server.count() == 2
    assert roles(client, second) == ["system", "user", "assistant", "tool"]


def test_a_day_cost_limit_refuses_triggers(
    client: httpx.Client, openai_server: FakeOpenAI, clock: FrozenClock
) -> None:
    openai_server.enqueue(Text("Costly.", usage=Usage(100_000, 0)))
    agent = create_agent(client, openai_server, tools=[], max_day_cost_usd=0.01)
    assert run_and_wait(client, agent["id"])["status"] == "succeeded"

    refused = client.post(f"/api/agents/{agent['id']}/task")

    assert_error(refused, 429, "budget_exceeded", "$0.015", "$0.01 ", "max_day_cost_usd")


def test_a_model_without_a_known_price_is_held_by_token_limits_only(
    client: httpx.Client, openai_server: FakeOpenAI, clock: FrozenClock
) -> None:
    openai_server.enqueue(Text("Unpriced.", usage=Usage(100_000, 0)))
    agent = create_agent(
        client, openai_server, model="openai:no-such-model", tools=[], max_day_cost_usd=0.01
    )
    run = run_and_wait(client, agent["id"])
    assert run["status"] == "succeeded" and run["cost_usd"] is None

    openai_server.enqueue(Text("Still running."))
    assert run_and_wait(client, agent["id"])["status"] == "succeeded"
    assert client.get(f"/api/agents/{agent['id']}/usage").json()["spent"] is False


def test_a_webhook_delivery_while_the_day_is_spent_gets_429_without_the_figures(
    client: httpx.Client, openai_server: FakeOpenAI, clock: FrozenClock
) -> None:
    agent = spend_the_day(client, openai_server)
    trigger = make_trigger(client, agent["id"], "github")
    body = json.dumps({"ref": "refs/heads/main"}).encode()

    refused = fire(client, trigger, body, github_headers(trigger["secret"], body, "d-1"))

    detail = assert_error(refused, 429, "budget_exceeded", "daily budget", "UTC")
    assert "110" not in detail and "max_day_tokens" not in detail
    clock.advance(days=1)
    openai_server.enqueue(Text("Triaged."))
    accepted = fire(client, trigger, body, github_headers(trigger["secret"], body, "d-1"))
    assert accepted.status_code == 202, accepted.text
    assert wait_finished(client, accepted.json()["id"])["status"] == "succeeded"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"max_run_tokens": 0}, "greater than or equal to 1"),
        ({"max_run_tokens": -5}, "greater than or equal to 1"),
        ({"max_day_tokens": 10**12}, "less than or equal to 1000000000"),
        ({"max_day_tokens": 1.5}, "max_day_tokens"),
        ({"max_run_tokens": "lots"}, "max_run_tokens"),
        ({"max_run_cost_usd": 0}, "greater than 0"),
        ({"max_day_cost_usd": -0.5}, "greater than 0"),
        ({"max_day_cost_usd": 1e7}, "less than or equal to 1000000"),
        ({"max_run_cost_usd": "cheap"}, "max_run_cost_usd"),
    ],
)
def test_invalid_limits_are_422(
    client: httpx.Client, fields: dict[str, Any], fragment: str
) -> None:
    body = {"name": "a", "model": "scripted:demo", **fields}

    created = client.post("/api/agents", json=body)
    agent = client.post("/api/agents", json={"name": "b", "model": "scripted:demo"}).json()
    patched = client.patch(f"/api/agents/{agent['id']}", json=fields)

    for response in (created, patched):
        detail = assert_error(response, 422, "validation_error", fragment, case=fields)
        assert next(iter(fields)) in detail


def test_limits_are_set_read_and_cleared(client: httpx.Client) -> None:
    limits = {
        "max_run_tokens": 5000,
        "max_run_cost_usd": 0.5,
        "max_day_tokens": 100_000,
        "max_day_cost_usd": 2.25,
    }
    agent = client.post("/api/agents", json={"name": "a", "model": "scripted:demo"}).json()
    assert {name: agent[name] for name in limits} == dict.fromkeys(limits)

    set_ = client.patch(f"/api/agents/{agent['id']}", json=limits).json()
    cleared = client.patch(f"/api/agents/{agent['id']}", json={"max_day_tokens": None}).json()

    assert {name: set_[name] for name in limits} == limits
    assert cleared["max_day_tokens"] is None and cleared["max_run_tokens"] == 5000
    usage = client.get(f"/api/agents/{agent['id']}/usage").json()
    assert usage["tokens"] == 0 and usage["spent"] is False
    assert usage["max_day_tokens"] is None and usage["max_day_cost_usd"] == 2.25
    assert client.get("/api/agents/999999/usage").status_code == 404
