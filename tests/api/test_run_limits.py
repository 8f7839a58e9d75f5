"""An agent's queue of waiting runs is bounded."""

import httpx
import pytest

from tests.api.test_run_control import start_hanging_run
from tests.support.openai_server import FakeOpenAI
from zerg.settings import Settings

QUEUE_LIMIT = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_queued_runs": QUEUE_LIMIT})


def test_a_full_queue_answers_429(client: httpx.Client, openai_server: FakeOpenAI) -> None:
    agent, first = start_hanging_run(client, openai_server, concurrency="queue")
    waiting = [client.post(f"/api/agents/{agent['id']}/task") for _ in range(QUEUE_LIMIT)]
    assert {r.status_code for r in waiting} == {202}

    refused = client.post(f"/api/agents/{agent['id']}/task")

    assert refused.status_code == 429
    assert refused.json()["code"] == "queue_full"
    assert "ZERG_MAX_QUEUED_RUNS" in refused.json()["detail"]
    assert len(client.get(f"/api/runs?agent_id={agent['id']}").json()["items"]) == QUEUE_LIMIT + 1
    # A run leaving the queue makes room again.
    assert client.post(f"/api/runs/{waiting[0].json()['id']}/cancel").status_code == 200
    assert client.post(f"/api/agents/{agent['id']}/task").status_code == 202
    client.post(f"/api/runs/{first['id']}/cancel")
