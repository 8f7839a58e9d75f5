"""Chat: POST /api/threads/{id}/messages starts a turn whose tokens stream as `message.delta`
on the run's event stream, and which stores what a task run stores, over the real OpenAI
client against the fake server (and a `scripted:` model)."""

import itertools
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.api.test_auth import wait_for_auth_mode
from tests.api.test_isolation_runs import add_person
from tests.api.test_run_events import (
    Received,
    check_stream,
    create_agent,
    follow,
    history,
    messages_of,
    names,
    openai_agent,
    roles,
    same_message,
)
from tests.support.openai_server import Error, FakeOpenAI, Hang, Text, ToolCall, Usage
from tests.support.waiting import wait_for
from zerg.db import Database

pytestmark = pytest.mark.anyio

ANSWER = " ".join(f"word{n}" for n in range(40))


async def chat_thread(http: httpx.AsyncClient, agent: dict[str, Any]) -> int:
    response = await http.post("/api/threads", json={"agent_id": agent["id"]})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def say(http: httpx.AsyncClient, thread_id: int, content: str) -> dict[str, Any]:
    """Send a message; returns the turn's run, as accepted."""
    response = await http.post(f"/api/threads/{thread_id}/messages", json={"content": content})
    assert response.status_code == 202, response.text
    return dict(response.json())


async def turn(http: httpx.AsyncClient, thread_id: int, content: str) -> list[Received]:
    """Send a message and follow its turn to the end; the turn must succeed."""
    run = await say(http, thread_id, content)
    events = await history(http, run["id"])
    check_stream(events)
    assert events[-1].name == "run.succeeded", events[-1]
    return events


def deltas(events: list[Received]) -> str:
    return "".join(e.data["content"] for e in events if e.name == "message.delta")


async def slow_turn(
    http: httpx.AsyncClient, openai_server: FakeOpenAI, *, token_delay_s: float
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """A chat turn asked to count to forty, whose model sends `ANSWER` a token at a time:
    the agent, its chat thread and the turn's run (just started)."""
    openai_server.stream_delay = token_delay_s
    openai_server.reply_text(ANSWER)
    agent = await create_agent(http, **openai_agent(openai_server, tools=[]))
    thread_id = await chat_thread(http, agent)
    return agent, thread_id, await say(http, thread_id, "Count to forty.")


async def test_tokens_stream_while_the_model_answers_and_add_up_to_the_stored_answer(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    agent, thread_id, run = await slow_turn(http, openai_server, token_delay_s=0.05)
    async with follow(http, run["id"]) as stream:
        before = await stream.until(lambda e: e.name == "message.delta")
        model_call = openai_server.requests[-1].state
        status = (await http.get(f"/api/runs/{run['id']}")).json()["status"]
        after = await stream.rest()

    assert (run["trigger"], run["status"]) == ("chat", "queued")
    assert (run["thread_id"], run["agent_id"]) == (thread_id, agent["id"])
    assert model_call == "pending" and status == "running"  # the turn had not ended
    events = before + after
    check_stream(events)
    assert deltas(events) == ANSWER
    first = next(e for e in events if e.name == "message.delta")
    assert first.data["run_id"] == run["id"] and first.data["thread_id"] == thread_id
    stored = await messages_of(http, thread_id)
    assert [(m["role"], m["content"]) for m in stored[1:]] == [
        ("user", "Count to forty."),
        ("assistant", ANSWER),
    ]
    created = [e for e in events if e.name == "message.created"]
    assert all(same_message(e, m) for e, m in zip(created, stored[1:], strict=True)), created
    # The user's message, the run starting, its tokens, then the message they make up.
    assert [name for name, _ in itertools.groupby(names(events))] == [
        "run.queued",
        "message.created",
        "run.started",
        "message.delta",
        "message.created",
        "run.succeeded",
    ]


async def test_the_run_records_the_usage_the_stream_reports(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.reply_text("Hello there.", usage=Usage(123, 45))
    agent = await create_agent(http, **openai_agent(openai_server, tools=[]))
    thread_id = await chat_thread(http, agent)

    events = await turn(http, thread_id, "Hi!")

    run = (await http.get(f"/api/runs/{events[-1].data['id']}")).json()
    assert (run["input_tokens"], run["output_tokens"], run["total_tokens"]) == (123, 45, 168)
    assert events[-1].data == run
    request = openai_server.requests[0].body
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}
    answer = (await messages_of(http, thread_id))[-1]
    meta = answer["metadata"]
    assert (meta["input_tokens"], meta["output_tokens"], meta["model"]) == (
        123,
        45,
        "openai:gpt-test",
    )


async def test_the_next_turn_shows_the_model_the_whole_conversation(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(
        ToolCall("calculator", {"expression": "6 * 7"}, call_id="call_1"),
        Text("It is 42."),
        Text("You asked for 6 * 7."),
    )
    agent = await create_agent(
        http, **openai_agent(openai_server, system_instructions="You are precise.")
    )
    thread_id = await chat_thread(http, agent)

    await turn(http, thread_id, "What is 6 * 7?")
    await turn(http, thread_id, "What did I ask?")

    seen = openai_server.requests[2].body["messages"]
    assert [m["role"] for m in seen] == ["system", "user", "assistant", "tool", "assistant", "user"]
    system, question, call, result, answer, follow_up = seen
    assert system["content"] == "You are precise."
    assert question["content"] == "What is 6 * 7?"
    assert [(c["id"], c["function"]["name"]) for c in call["tool_calls"]] == [
        ("call_1", "calculator")
    ]
    assert result["tool_call_id"] == "call_1" and "42" in result["content"]
    assert answer["content"] == "It is 42."
    assert follow_up["content"] == "What did I ask?"
    assert len(openai_server.requests) == 3


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message without what differs between two threads (ids, times, latency)."""
    meta = {k: v for k, v in message["metadata"].items() if k != "latency_ms"}
    drop = {"id", "thread_id", "created_at", "metadata"}
    return {**{k: v for k, v in message.items() if k not in drop}, "metadata": meta}


async def test_a_tool_call_in_chat_is_stored_as_in_a_task_run(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    script = (
        ToolCall("calculator", {"expression": "6 * 7"}, call_id="call_1", usage=Usage(20, 7)),
        Text("The answer is 42.", usage=Usage(30, 5)),
    )
    agent = await create_agent(
        http, **openai_agent(openai_server, model="openai:gpt-4o-mini", task_instructions="6 * 7?")
    )
    openai_server.enqueue(*script)
    task = (await http.post(f"/api/agents/{agent['id']}/task?wait=true&timeout_s=20")).json()
    openai_server.enqueue(*script)
    thread_id = await chat_thread(http, agent)

    events = await turn(http, thread_id, "6 * 7?")

    chat = await messages_of(http, thread_id)
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "tool", "assistant"]
    assert [comparable(m) for m in chat] == [
        comparable(m) for m in await messages_of(http, task["thread_id"])
    ]
    call, result = chat[2], chat[3]
    assert call["tool_calls"] == [
        {"id": "call_1", "name": "calculator", "args": {"expression": "6 * 7"}}
    ]
    assert (call["metadata"]["input_tokens"], call["metadata"]["output_tokens"]) == (20, 7)
    assert result["tool_call_id"] == "call_1" and result["name"] == "calculator"
    assert roles(events) == ["user", "assistant", "tool", "assistant"]
    created = [e for e in events if e.name == "message.created"]
    assert all(same_message(e, m) for e, m in zip(created, chat[1:], strict=True)), created
    assert deltas(events) == "The answer is 42."  # a tool call streams no text
    run = events[-1].data
    assert (run["input_tokens"], run["output_tokens"], run["total_tokens"]) == (50, 12, 62)
    assert run["cost_usd"] is not None and run["cost_usd"] == task["cost_usd"] > 0


async def test_a_scripted_model_chats_with_its_tools(http: httpx.AsyncClient) -> None:
    agent = await create_agent(http, model="scripted:demo", tools=["calculator"])
    thread_id = await chat_thread(http, agent)

    events = await turn(http, thread_id, "Compute something.")

    stored = await messages_of(http, thread_id)
    assert [m["role"] for m in stored] == ["system", "user", "assistant", "tool", "assistant"]
    assert stored[2]["tool_calls"][0]["name"] == "calculator"
    assert stored[3]["content"] == "42"
    answer = stored[-1]["content"]
    assert "42" in answer and deltas(events) == answer
    assert events[-1].data["total_tokens"] > 0


async def test_a_second_message_while_the_turn_runs_is_409_thread_busy(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Text("First answer.")), Text("Second answer."))
    agent = await create_agent(http, **openai_agent(openai_server, tools=[]))
    thread_id = await chat_thread(http, agent)
    run = await say(http, thread_id, "One.")
    stored_at_once = await messages_of(http, thread_id)
    wait_for(openai_server.count, "the turn's model call")

    busy = await http.post(f"/api/threads/{thread_id}/messages", json={"content": "Two."})

    assert_error(busy, 409, "thread_busy", f"run {run['id']}")
    assert [(m["role"], m["content"]) for m in stored_at_once][1:] == [("user", "One.")]
    assert await messages_of(http, thread_id) == stored_at_once
    runs = (await http.get("/api/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert [r["id"] for r in runs] == [run["id"]]
    openai_server.release()
    assert (await history(http, run["id"]))[-1].name == "run.succeeded"
    await turn(http, thread_id, "Two.")  # the thread is free again


async def test_a_task_run_thread_is_not_a_chat_thread(http: httpx.AsyncClient) -> None:
    agent = await create_agent(http)
    task = (await http.post(f"/api/agents/{agent['id']}/task?wait=true&timeout_s=20")).json()
    before = await messages_of(http, task["thread_id"])

    response = await http.post(
        f"/api/threads/{task['thread_id']}/messages", json={"content": "Hello?"}
    )

    assert_error(response, 422, "not_a_chat_thread")
    assert await messages_of(http, task["thread_id"]) == before
    runs = (await http.get("/api/runs", params={"agent_id": agent["id"]})).json()["items"]
    assert [r["id"] for r in runs] == [task["id"]]


async def test_another_users_thread_is_404(client: httpx.Client, database: Database) -> None:
    ada = add_person(database, "ada", admin=False)
    bob = add_person(database, "bob", admin=False)
    wait_for_auth_mode(client)
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as http:
        agent = await create_agent(http, ada.headers)
        thread = await http.post(
            "/api/threads", json={"agent_id": agent["id"]}, headers=ada.headers
        )
        thread_id = thread.json()["id"]
        url = f"/api/threads/{thread_id}/messages"

        theirs = await http.post(url, json={"content": "Hi."}, headers=bob.headers)
        stored = (await http.get(url, headers=ada.headers)).json()["items"]
        runs = (await http.get("/api/runs", headers=ada.headers)).json()["items"]
        mine = await http.post(url, json={"content": "Hi."}, headers=ada.headers)

    assert_error(theirs, 404, "not_found")
    assert theirs.json()["detail"] == f"thread {thread_id} does not exist"
    assert [m["role"] for m in stored] == ["system"] and runs == []
    assert mine.status_code == 202, mine.text


async def test_cancel_mid_stream_ends_the_turn_and_frees_the_thread(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    _agent, thread_id, run = await slow_turn(http, openai_server, token_delay_s=0.1)

    async with follow(http, run["id"]) as stream:
        before = await stream.until(lambda e: e.name == "message.delta")
        cancelled = await http.post(f"/api/runs/{run['id']}/cancel")
        after = await stream.rest()

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    events = before + after
    check_stream(events)
    assert events[-1].name == "run.cancelled" and events[-1].data["status"] == "cancelled"
    assert ANSWER.startswith(deltas(events)) and deltas(events) != ANSWER
    wait_for(lambda: openai_server.cut_off, "the model call to be cut off")
    openai_server.stream_delay = 0
    openai_server.reply_text("Fine.")
    again = await turn(http, thread_id, "Just say fine.")
    assert deltas(again) == "Fine."


async def test_a_chat_turn_leaves_the_agents_status_alone(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Error(400)), Text("Better."))
    agent = await create_agent(http, **openai_agent(openai_server, tools=[]))
    thread_id = await chat_thread(http, agent)

    run = await say(http, thread_id, "Fail, please.")
    wait_for(openai_server.count, "the turn's model call")
    during = (await http.get(f"/api/agents/{agent['id']}")).json()
    running = (await http.get(f"/api/runs/{run['id']}")).json()["status"]
    openai_server.release()
    failed = await history(http, run["id"])
    after_failure = (await http.get(f"/api/agents/{agent['id']}")).json()
    await turn(http, thread_id, "Now answer.")
    after_success = (await http.get(f"/api/agents/{agent['id']}")).json()

    assert running == "running" and failed[-1].name == "run.failed"
    for seen in (during, after_failure, after_success):
        assert (seen["status"], seen["last_error"]) == ("idle", None), seen
