"""Metrics in distributed mode: every replica reports the deployment's runs, executed by
workers; a worker serves its own process metrics on ZERG_METRICS_PORT."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_metrics import parse, value
from tests.support.openai_server import FakeOpenAI, Text
from tests.support.postgres import free_port
from tests.support.processes import WorkerProcess, ZergProcess
from tests.support.waiting import wait_for


@pytest.fixture
def deployment(
    pg_database_url: str, openai_server: FakeOpenAI, tmp_path: Path
) -> Iterator[tuple[list[ZergProcess], WorkerProcess, int]]:
    metrics_port = free_port()
    env = {
        "ZERG_DATABASE_URL": pg_database_url,
        "ZERG_DATA_DIR": str(tmp_path / "data"),
        "ZERG_MODEL_BASE_URLS": f"{openai_server.base_url}/v1",
    }
    apis = [ZergProcess(env, tmp_path / f"api{i}.log", ["--no-execute"]) for i in (1, 2)]
    worker = WorkerProcess(
        {**env, "ZERG_METRICS_PORT": str(metrics_port)}, tmp_path / "w.log", "w1"
    )
    try:
        for process in [*apis, worker]:
            process.spawn()
        for process in [*apis, worker]:
            process.wait_ready()
        yield apis, worker, metrics_port
    finally:
        for process in [*apis, worker]:
            process.stop()


def finished(url: str) -> float:
    """Succeeded runs, whatever their trigger, as the replica at `url` counts them."""
    samples = parse(httpx.get(f"{url}/metrics").text)
    return sum(
        count
        for (name, labels), count in samples.items()
        if name == "zerg_runs_finished_total" and ("status", "succeeded") in labels
    )


def test_each_replica_counts_every_run_of_the_deployment(
    deployment: tuple[list[ZergProcess], WorkerProcess, int], openai_server: FakeOpenAI
) -> None:
    apis, _, metrics_port = deployment
    openai_server.enqueue(Text("one"), Text("two"))
    body = {
        "name": "a",
        "model": "openai:gpt-test",
        "task_instructions": "Do the task.",
        "config": {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0},
        "concurrency": "queue",
    }
    agent = httpx.post(f"{apis[0].url}/api/agents", json=body).json()
    for api in apis:  # one run triggered through each replica, executed by the worker
        answer = httpx.post(f"{api.url}/api/agents/{agent['id']}/task?wait=true", timeout=30)
        assert answer.json()["status"] == "succeeded", answer.text

    for api in apis:  # the same cluster-wide totals on both: scrape one, never sum them
        wait_for(lambda url=api.url: finished(url) == 2, "both runs counted", timeout_s=10)

    worker = parse(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text)
    assert value(worker, "zerg_event_loop_lag_seconds_count") > 0
    assert ("zerg_scheduler_fires_total", ()) in worker
    assert not any(name.startswith("zerg_runs_") for name, _ in worker)
