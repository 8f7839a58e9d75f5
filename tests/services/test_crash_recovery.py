"""kill -9 of `zerg serve` with several runs in flight: every run finishes after the restart,
no completed model or tool call is repeated, no agent stays `running`, no queued run is lost."""

from typing import Any

import httpx
from sqlalchemy import select

from tests.support.openai_server import FakeOpenAI, Hang, Reply, Text, ToolCall
from tests.support.processes import ZergProcess
from tests.support.waiting import wait_for
from zerg.db import Database
from zerg.models import Message


class Script:
    """Every conversation: a calculator call, then (before the crash) a model call that hangs
    until the process dies, or (after it) a final answer."""

    crashed = False

    def __call__(self, body: dict[str, Any]) -> Reply:
        if body["messages"][-1]["role"] != "tool":
            return ToolCall("calculator", {"expression": "6 * 7"})
        return Text("It is 42.") if self.crashed else Hang()


def test_kill_9_with_runs_in_flight_loses_and_repeats_nothing(
    zerg: ZergProcess, openai_server: FakeOpenAI, database: Database
) -> None:
    script = Script()
    openai_server.set_policy(script)
    zerg.start()
    api = httpx.Client(base_url=zerg.url, timeout=30)
    config = {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0}

    def agent(name: str, **fields: Any) -> int:
        body = {
            "name": name,
            "model": "openai:gpt-test",
            "task_instructions": "6 * 7?",
            "tools": ["calculator"],
            "config": config,
            **fields,
        }
        return int(api.post("/api/agents", json=body).json()["id"])

    solo = [agent(f"solo-{n}") for n in range(3)]
    queued = agent("queued", concurrency="queue")
    run_ids = [api.post(f"/api/agents/{a}/task").json()["id"] for a in [*solo, queued, queued]]
    # Four runs are in their second model call; the queue agent's second run waits its turn.
    wait_for(
        lambda: len([r for r in openai_server.requests if r.state == "pending"]) == 4,
        "four hanging model calls",
    )
    zerg.kill()

    script.crashed = True
    zerg.start()
    wait_for(
        lambda: all(api.get(f"/api/runs/{r}").json()["status"] == "succeeded" for r in run_ids),
        "every run to succeed",
    )

    runs = [api.get(f"/api/runs/{r}").json() for r in run_ids]
    for run in runs:
        with database.session() as session:
            roles = list(
                session.scalars(
                    select(Message.role)
                    .where(Message.thread_id == run["thread_id"])
                    .order_by(Message.id)
                )
            )
        assert roles == ["system", "user", "assistant", "tool", "assistant"], run
    # Each run: one completed tool-call turn and one completed answer; the four calls cut off
    # by the kill are the only ones made twice.
    assert len(openai_server.completed) == 10
    assert len(openai_server.cut_off) == 4
    assert runs[4]["started_at"] >= runs[3]["finished_at"]  # the queue still held
    agents = api.get("/api/agents").json()["items"]
    assert {a["status"] for a in agents} == {"idle"}
    api.close()
