"""Runs never strand: deletes, a reset database and lost engine records leave no run stuck."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.api.helpers import Rows
from tests.support.server import serve_in_thread
from tests.support.waiting import wait_for
from zerg import clock
from zerg.api.app import create_app
from zerg.db import Database
from zerg.db.engine import create_db_engine
from zerg.db.migrate import upgrade
from zerg.models import runs_table
from zerg.services.run_records import record_run
from zerg.settings import Settings

DEMO = {"name": "demo", "model": "scripted:demo", "task_instructions": "6 * 7?"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"reconcile_interval_s": 0.2})


def run_to_end(client: httpx.Client, agent_id: int) -> dict[str, Any]:
    response = client.post(f"/api/agents/{agent_id}/task?wait=true&timeout_s=15")
    body: dict[str, Any] = response.json()
    return body


def wait_for_status(client: httpx.Client, run_id: int, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] == status else None

    return wait_for(reached, f"run {run_id} to be {status}", timeout_s=20)


def test_an_agent_made_after_a_delete_runs_under_new_ids(client: httpx.Client) -> None:
    old = client.post("/api/agents", json=DEMO).json()
    old_run = run_to_end(client, old["id"])
    assert client.delete(f"/api/agents/{old['id']}").status_code == 204

    new = client.post("/api/agents", json=DEMO).json()
    new_run = run_to_end(client, new["id"])

    assert new["id"] != old["id"] and new_run["id"] != old_run["id"]
    assert new_run["status"] == "succeeded"
    assert client.post(f"/api/agents/{new['id']}/task").status_code == 202


def test_a_run_recorded_without_its_workflow_is_started_at_launch(
    database: Database, rows: Rows, request: pytest.FixtureRequest
) -> None:
    """A crash between recording a run and handing it to the engine leaves it queued."""
    agent_id = rows.agent(**{**DEMO, "tools": ["calculator"]})
    with database.transaction() as db:
        run = record_run(agent_id, trigger="api", idempotency_key=None, db=db).run

    client: httpx.Client = request.getfixturevalue("client")

    assert wait_for_status(client, run.id, "succeeded")["thread_id"] is not None


def test_a_run_whose_workflow_is_missing_is_started_by_the_reconciliation(
    client: httpx.Client, database: Database
) -> None:
    agent = client.post("/api/agents", json=DEMO).json()
    with database.transaction() as db:
        run = record_run(agent["id"], trigger="api", idempotency_key=None, db=db).run
        # Old enough that no trigger can still be handing it to the engine.
        db.execute(
            update(runs_table)
            .where(runs_table.c.id == run.id)
            .values(queued_at=clock.now() - timedelta(minutes=5))
        )

    assert wait_for_status(client, run.id, "succeeded")["total_tokens"] > 0


def test_a_run_whose_workflow_ended_without_finishing_it_fails_with_a_reason(
    client: httpx.Client, database: Database
) -> None:
    agent = client.post("/api/agents", json=DEMO).json()
    run = run_to_end(client, agent["id"])
    # As if the run's final write was lost while its workflow still ended.
    with database.transaction() as db:
        db.execute(
            update(runs_table)
            .where(runs_table.c.id == run["id"])
            .values(status="running", finished_at=None, queued_at=clock.now() - timedelta(hours=1))
        )

    failed = wait_for_status(client, run["id"], "failed")

    assert "workflow" in failed["error"] and "SUCCESS" in failed["error"]
    assert client.get(f"/api/agents/{agent['id']}").json()["status"] == "error"


def test_an_engine_file_left_by_a_deleted_database_is_set_aside(
    backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip(reason="only the embedded SQLite database has an engine file of its own")
    settings = Settings(data_dir=tmp_path / "data")

    def start_and_run() -> dict[str, Any]:
        engine = create_db_engine(settings.resolved_database_url)
        upgrade(engine)
        engine.dispose()
        with (
            serve_in_thread(create_app(settings)) as url,
            httpx.Client(base_url=url, timeout=30) as client,
        ):
            agent = client.post("/api/agents", json=DEMO).json()
            return run_to_end(client, agent["id"])

    assert start_and_run()["status"] == "succeeded"
    for path in (tmp_path / "data").glob("zerg.db*"):
        path.unlink()  # a reset by hand: the engine file beside it is left

    again = start_and_run()

    assert again["status"] == "succeeded"
    assert len(list((tmp_path / "data").glob("zerg-engine.orphaned-*.db"))) == 1
