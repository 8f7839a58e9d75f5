"""Scheduled fires of an agent whose daily budget is spent are skipped, counted and logged; the
fire is claimed all the same, and the next UTC day's fires run."""

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.scheduler.test_service import T0, Clock, make_agent, next_run_at, runs, with_scheduler
from zerg import clock
from zerg.db import Database
from zerg.models import Run
from zerg.scheduler.service import SchedulerService
from zerg.settings import Settings


@pytest.fixture
def frozen() -> Iterator[Clock]:
    fake = Clock()
    clock.set_clock(lambda: fake.now)
    yield fake
    clock.set_clock(None)


def spend(database: Database, agent_id: int, tokens: int) -> int:
    """A finished run of today that used `tokens`."""
    with database.session() as session:
        run = Run(
            agent_id=agent_id,
            trigger="manual",
            status="succeeded",
            queued_at=T0,
            input_tokens=tokens,
            output_tokens=0,
            total_tokens=tokens,
            cost_usd=0.0,
        )
        session.add(run)
        session.commit()
        return run.id


def test_a_fire_while_the_day_is_spent_is_skipped_and_counted(
    settings: Settings, database: Database, frozen: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    agent_id = make_agent(settings, database, max_day_tokens=100)
    spent = spend(database, agent_id, 150)
    key = f"cron:{agent_id}:2026-11-25T10:05:00+00:00"

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 5, 1)
        with caplog.at_level(logging.INFO, logger="zerg.scheduler.service"):
            assert await schedulers[0].tick() == [key]
        assert await schedulers[0].tick() == []  # claimed once, never retried
        assert (schedulers[0].budget_skipped, schedulers[0].skipped) == (1, 0)

    with_scheduler(settings, database, body)

    assert [run.id for run in runs(database)] == [spent]
    assert next_run_at(database, agent_id) == T0.replace(minute=10)
    [line] = [r.getMessage() for r in caplog.records if "budget spent" in r.getMessage()]
    assert "2026-11-25T10:05:00+00:00" in line and "max_day_tokens" in line


def test_the_next_utc_day_s_fires_run_again(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    agent_id = make_agent(settings, database, max_day_tokens=100, missed_fires="skip")
    spend(database, agent_id, 150)

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 5, 1)
        await schedulers[0].tick()
        # A day later (the fires in between missed: skipped), 10:10 is on time and runs.
        frozen.now = T0.replace(minute=10, second=1) + timedelta(days=1)
        await schedulers[0].tick()
        assert (schedulers[0].budget_skipped, schedulers[0].skipped) == (1, 0)

    with_scheduler(settings, database, body)

    [run] = [run for run in runs(database) if run.trigger == "schedule"]
    assert run.status == "succeeded"
    assert run.idempotency_key == f"cron:{agent_id}:2026-11-26T10:10:00+00:00"
