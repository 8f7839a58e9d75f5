"""A distributed deployment as real processes: 2 API replicas (`zerg serve --no-execute`) and
2 workers (`zerg worker`) on one fresh PostgreSQL database, with short heartbeat timings."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.support.openai_server import FakeOpenAI
from tests.support.processes import WorkerProcess, ZergProcess
from zerg.db import Database
from zerg.models import Run
from zerg.settings import Settings

HEARTBEAT_S = 0.25
DEAD_AFTER_S = 1.5


@pytest.fixture
def pg_database_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        pytest.skip(reason="distributed mode runs on PostgreSQL only")
    url: str = request.getfixturevalue("database_url")
    return url


@dataclass
class Cluster:
    apis: list[ZergProcess]
    workers: list[WorkerProcess]
    database: Database
    model_url: str

    def create_agent(self, name: str, **fields: Any) -> dict[str, Any]:
        body = {
            "name": name,
            "model": "openai:gpt-test",
            "task_instructions": "Do the task.",
            "config": {"base_url": self.model_url, "max_retries": 0},
            **fields,
        }
        response = httpx.post(f"{self.apis[0].url}/api/agents", json=body)
        assert response.status_code == 201, response.text
        agent: dict[str, Any] = response.json()
        return agent

    def executor_of(self, run_id: int) -> str | None:
        with self.database.session() as session:
            return session.scalar(select(Run.executor_id).where(Run.id == run_id))

    def worker(self, executor_id: str | None) -> WorkerProcess:
        return next(w for w in self.workers if w.executor_id == executor_id)


@pytest.fixture
def cluster(pg_database_url: str, openai_server: FakeOpenAI, tmp_path: Path) -> Iterator[Cluster]:
    env = {
        "ZERG_DATABASE_URL": pg_database_url,
        "ZERG_DATA_DIR": str(tmp_path / "data"),
        "ZERG_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S),
        "ZERG_WORKER_DEAD_AFTER_S": str(DEAD_AFTER_S),
        # One run at a time per worker: two simultaneous runs must use both workers.
        "ZERG_WORKER_CONCURRENCY": "1",
        # The agents' config.base_url: the fake OpenAI server, listed as an operator would.
        "ZERG_MODEL_BASE_URLS": f"{openai_server.base_url}/v1",
    }
    apis = [ZergProcess(env, tmp_path / f"api{i}.log", ["--no-execute"]) for i in (1, 2)]
    workers = [WorkerProcess(env, tmp_path / f"w{i}.log", f"w{i}") for i in (1, 2)]
    database = Database(Settings(database_url=pg_database_url))
    try:
        for process in [*apis, *workers]:
            process.spawn()
        for process in [*apis, *workers]:
            process.wait_ready()
        yield Cluster(apis, workers, database, f"{openai_server.base_url}/v1")
    finally:
        for process in [*apis, *workers]:  # all at once, then wait for each
            if process.process is not None and process.process.poll() is None:
                process.process.terminate()
        for process in [*apis, *workers]:
            process.stop()
        database.dispose()
