"""A worker killed mid-run: another worker notices its silence and finishes the run."""

import time

import httpx
from sqlalchemy import select

from tests.distributed.conftest import Cluster
from tests.support.openai_server import FakeOpenAI, Hang, Text, ToolCall
from tests.support.waiting import wait_for
from zerg.models import Message, Worker


def test_a_killed_workers_run_finishes_on_another_worker(
    cluster: Cluster, openai_server: FakeOpenAI
) -> None:
    # First model call asks for the calculator; the second hangs until its worker dies.
    openai_server.enqueue(ToolCall("calculator", {"expression": "6 * 7"}, call_id="c1"), Hang())
    agent = cluster.create_agent("calc", tools=["calculator"])
    run = httpx.post(f"{cluster.apis[0].url}/api/agents/{agent['id']}/task").json()
    wait_for(lambda: openai_server.count() == 2)
    doomed = cluster.executor_of(run["id"])
    assert doomed in ("w1", "w2")
    openai_server.enqueue(Text("It is 42."))
    cluster.worker(doomed).kill()
    killed_at = time.monotonic()

    def finished() -> bool:
        answer = httpx.get(f"{cluster.apis[1].url}/api/runs/{run['id']}").json()
        return bool(answer["status"] == "succeeded")

    wait_for(finished, timeout_s=30)
    assert time.monotonic() - killed_at < 30
    survivor = ({"w1", "w2"} - {doomed}).pop()
    assert cluster.executor_of(run["id"]) == survivor

    thread_id = httpx.get(f"{cluster.apis[0].url}/api/runs/{run['id']}").json()["thread_id"]
    with cluster.database.session() as session:
        roles = list(
            session.scalars(
                select(Message.role).where(Message.thread_id == thread_id).order_by(Message.id)
            )
        )
        reaped = session.get(Worker, doomed)
        assert reaped is not None
        assert (reaped.status, reaped.reaped_by) == ("reaped", survivor)
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    # Each completed model call happened once; only the interrupted one was made again.
    assert [r.body["messages"][-1]["role"] for r in openai_server.completed] == ["user", "tool"]
    assert len(openai_server.requests) == 3
    status = httpx.get(f"{cluster.apis[1].url}/api/agents/{agent['id']}").json()["status"]
    assert status == "idle"


def test_a_stopped_worker_hands_its_run_over_and_rejoins_under_its_id(
    cluster: Cluster, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang())
    agent = cluster.create_agent("slow")
    run = httpx.post(f"{cluster.apis[0].url}/api/agents/{agent['id']}/task").json()
    wait_for(lambda: openai_server.count() == 1)
    leaving = cluster.executor_of(run["id"])
    openai_server.enqueue(Text("done"))
    cluster.worker(leaving).stop()  # SIGTERM, e.g. a rolling deploy
    stopped_at = time.monotonic()

    url = f"{cluster.apis[1].url}/api/runs/{run['id']}"
    wait_for(lambda: httpx.get(url).json()["status"] == "succeeded", timeout_s=30)
    # No waiting for its heartbeat to age: a clean stop is taken over at the next round.
    assert time.monotonic() - stopped_at < 10
    staying = ({"w1", "w2"} - {leaving}).pop()
    assert cluster.executor_of(run["id"]) == staying

    # Started again under the same id, it joins again.
    cluster.worker(leaving).start()
    with cluster.database.session() as session:
        row = session.get(Worker, leaving)
        assert row is not None
        assert row.status == "alive"
