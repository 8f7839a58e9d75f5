"""An agent's status once one of its runs has ended, set in one statement on each backend:
`running` while another of its task runs still is, else `error` after a failure, else `idle`."""

from datetime import UTC, datetime

import pytest

from tests.api.helpers import Rows
from zerg.db import Database
from zerg.models import Agent
from zerg.schemas.agents import AgentStatus
from zerg.schemas.runs import RunStatus
from zerg.services.run_records import agent_after_run

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def rows(database: Database) -> Rows:
    return Rows(database)


def settle(
    database: Database, agent_id: int, run_id: int, status: RunStatus, error: str | None
) -> AgentStatus:
    with database.transaction() as db:
        return agent_after_run(agent_id, run_id, status, error, NOW, db=db)


def stored(rows: Rows, agent_id: int) -> tuple[str, str | None, bool]:
    agent = rows.get(Agent, agent_id)
    assert agent is not None
    return agent.status, agent.last_error, agent.last_run_at is not None


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (RunStatus.SUCCEEDED, None, AgentStatus.IDLE),
        (RunStatus.FAILED, "boom", AgentStatus.ERROR),
        (RunStatus.TIMED_OUT, "too slow", AgentStatus.ERROR),
    ],
)
def test_the_last_run_settles_the_agent(
    database: Database, rows: Rows, status: RunStatus, error: str | None, expected: AgentStatus
) -> None:
    agent = rows.agent(status="running", last_error="an older failure")
    run = rows.run(agent, status=status.value)
    rows.run(agent, status="running", trigger="chat")  # a chat turn does not keep it running
    rows.run(rows.agent(), status="running")  # nor does another agent's run
    assert settle(database, agent, run, status, error) == expected
    assert stored(rows, agent) == (expected.value, error, True)


def test_another_running_run_keeps_the_agent_running(database: Database, rows: Rows) -> None:
    agent = rows.agent(status="running")
    ended = rows.run(agent, status="failed")
    rows.run(agent, status="running")
    assert settle(database, agent, ended, RunStatus.FAILED, "boom") == AgentStatus.RUNNING
    assert stored(rows, agent) == ("running", "boom", True)


def test_a_cancel_leaves_the_last_error(database: Database, rows: Rows) -> None:
    agent = rows.agent(status="running", last_error="an older failure")
    run = rows.run(agent, status="cancelled")
    assert settle(database, agent, run, RunStatus.CANCELLED, None) == AgentStatus.IDLE
    assert stored(rows, agent) == ("idle", "an older failure", True)
