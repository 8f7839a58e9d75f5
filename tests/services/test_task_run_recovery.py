"""A task run survives its process being killed between steps (kill -9 of `zerg serve`)."""

import httpx
from sqlalchemy import select

from tests.support.openai_server import FakeOpenAI, Hang, Text, ToolCall, Usage
from tests.support.processes import ZergProcess
from tests.support.waiting import wait_for
from zerg.db import Database
from zerg.models import Message


def stored_roles(database: Database, thread_id: int | None) -> list[str]:
    with database.session() as session:
        return list(
            session.scalars(
                select(Message.role).where(Message.thread_id == thread_id).order_by(Message.id)
            )
        )


def test_a_killed_run_resumes_without_repeating_completed_calls(
    zerg: ZergProcess, openai_server: FakeOpenAI, database: Database
) -> None:
    # First model call asks for the calculator; the second hangs until the process dies.
    openai_server.enqueue(
        ToolCall("calculator", {"expression": "6 * 7"}, call_id="c1", usage=Usage(20, 7)), Hang()
    )
    zerg.start()
    agent = httpx.post(
        f"{zerg.url}/api/agents",
        json={
            "name": "calc",
            "model": "openai:gpt-test",
            "task_instructions": "What is 6 * 7?",
            "tools": ["calculator"],
            "config": {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0},
        },
    ).json()
    run = httpx.post(f"{zerg.url}/api/agents/{agent['id']}/task").json()
    assert run["status"] == "queued"

    # Kill between steps: the tool call and its result are stored, the next model call is
    # in flight.
    wait_for(lambda: openai_server.count() == 2)
    thread_id = httpx.get(f"{zerg.url}/api/runs/{run['id']}").json()["thread_id"]
    assert stored_roles(database, thread_id) == ["system", "user", "assistant", "tool"]
    zerg.kill()

    openai_server.enqueue(Text("It is 42.", usage=Usage(30, 5)))
    zerg.start()
    wait_for(lambda: httpx.get(f"{zerg.url}/api/runs/{run['id']}").json()["status"] == "succeeded")

    assert stored_roles(database, thread_id) == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    # Each completed model call happened once; only the interrupted one was made again.
    completed = [r.body["messages"][-1]["role"] for r in openai_server.completed]
    assert completed == ["user", "tool"]
    assert len(openai_server.requests) == 3
    finished = httpx.get(f"{zerg.url}/api/runs/{run['id']}").json()
    assert finished["thread_id"] == thread_id
    # The run's usage counts the answer stored before the kill as well as the one after.
    assert (finished["input_tokens"], finished["output_tokens"]) == (50, 12)
    assert httpx.get(f"{zerg.url}/api/agents/{agent['id']}").json()["status"] == "idle"
