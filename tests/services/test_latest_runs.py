"""The agents table's last and open run of each agent, on each backend."""

import pytest

from tests.api.helpers import Rows
from zerg.db import Database
from zerg.services.runs import latest_runs


@pytest.fixture
def rows(database: Database) -> Rows:
    return Rows(database)


def newest(database: Database, agent_ids: list[int], *, open_only: bool = False) -> dict[int, int]:
    with database.session() as session:
        runs = latest_runs(agent_ids, session=session, open_only=open_only)
    return {agent_id: run.id for agent_id, run in runs.items()}


def test_each_agent_gets_its_newest_run_and_its_newest_open_one(
    database: Database, rows: Rows
) -> None:
    busy, done, idle, unlisted = rows.agents(4)
    rows.runs(busy, 3, status="succeeded")
    rows.run(busy, status="queued")  # open too, but older
    running = rows.run(busy, status="running")
    last_busy = rows.run(busy, status="failed")
    rows.run(done, status="succeeded")
    last_done = rows.run(done, status="cancelled")
    rows.runs(unlisted, 2, status="running")

    listed = [busy, done, idle]
    assert newest(database, listed) == {busy: last_busy, done: last_done}
    assert newest(database, listed, open_only=True) == {busy: running}


def test_no_agents_no_runs(database: Database) -> None:
    assert newest(database, []) == {}
