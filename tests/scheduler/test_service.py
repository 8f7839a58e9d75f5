"""SchedulerService with a controlled clock: each fire starts exactly one run."""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.openai_server import FakeOpenAI, Hang, Text
from zerg import clock
from zerg.db import Database
from zerg.events import EventBus
from zerg.models import Agent, Run, Thread
from zerg.scheduler.service import SchedulerService
from zerg.schemas.agents import AgentCreate, AgentUpdate
from zerg.services.agents import create_agent, update_agent
from zerg.services.task_runs import TaskRuns
from zerg.settings import Settings

T0 = datetime(2026, 11, 25, 10, 2, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def at(self, hour: int, minute: int, second: int = 0) -> None:
        self.now = T0.replace(hour=hour, minute=minute, second=second)


@pytest.fixture
def frozen() -> Iterator[Clock]:
    fake = Clock()
    clock.set_clock(lambda: fake.now)
    yield fake
    clock.set_clock(None)


def make_agent(database: Database, **fields: Any) -> int:
    data = AgentCreate.model_validate(
        {
            "name": "cron",
            "model": "scripted:demo",
            "task_instructions": "Report.",
            "schedule": "*/5 * * * *",
            **fields,
        }
    )
    with database.session() as session:
        agent = create_agent(data, session=session)
        session.commit()
        return agent.id


def with_scheduler(
    settings: Settings,
    database: Database,
    body: Callable[[list[SchedulerService]], Awaitable[None]],
    schedulers: int = 1,
) -> None:
    async def main() -> None:
        task_runs = TaskRuns(settings, database, EventBus())
        await task_runs.launch()
        try:
            await body(
                [SchedulerService(database, task_runs, interval_s=1) for _ in range(schedulers)]
            )
            await settle(database)
        finally:
            task_runs.shutdown()

    asyncio.run(main())


async def settle(database: Database) -> None:
    for _ in range(500):
        with database.session() as session:
            busy = session.scalar(select(Run.id).where(Run.status.in_(["queued", "running"])))
        if busy is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("runs did not finish")


def runs(database: Database) -> list[Run]:
    with database.session() as session:
        return list(session.scalars(select(Run).order_by(Run.id)))


def next_run_at(database: Database, agent_id: int) -> datetime | None:
    with database.session() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        return agent.next_run_at


def test_a_due_fire_starts_one_scheduled_run(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    agent_id = make_agent(database)
    assert next_run_at(database, agent_id) == T0.replace(minute=5)

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 4)
        assert await schedulers[0].tick() == []
        frozen.at(10, 5, 1)
        assert await schedulers[0].tick() == [f"cron:{agent_id}:2026-11-25T10:05:00+00:00"]
        assert await schedulers[0].tick() == []

    with_scheduler(settings, database, body)

    [run] = runs(database)
    assert run.trigger == "schedule" and run.status == "succeeded"
    assert run.idempotency_key == f"cron:{agent_id}:2026-11-25T10:05:00+00:00"
    with database.session() as session:
        thread = session.get(Thread, run.thread_id)
        assert thread is not None and thread.thread_type == "scheduled"
    assert next_run_at(database, agent_id) == T0.replace(minute=10)


@pytest.mark.parametrize(("policy", "expected"), [("run_once", 1), ("skip", 0)])
def test_fires_missed_while_down_follow_the_policy(
    settings: Settings, database: Database, frozen: Clock, policy: str, expected: int
) -> None:
    agent_id = make_agent(database, missed_fires=policy)

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(12, 3)  # down from 10:02 to 12:03: fires 10:05 ... 12:00 were missed
        await schedulers[0].tick()
        assert schedulers[0].skipped == 24 - expected

    with_scheduler(settings, database, body)

    started = runs(database)
    assert len(started) == expected
    if started:  # the one catch-up run is for the latest missed fire
        assert started[0].idempotency_key == f"cron:{agent_id}:2026-11-25T12:00:00+00:00"
    assert next_run_at(database, agent_id) == T0.replace(hour=12, minute=5)


def test_many_schedulers_fire_each_fire_once(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    make_agent(database, concurrency="queue")

    async def body(schedulers: list[SchedulerService]) -> None:
        for minute in (5, 10, 15):
            frozen.at(10, minute, 2)
            await asyncio.gather(*(s.tick() for s in schedulers))

    with_scheduler(settings, database, body, schedulers=3)

    keys = [run.idempotency_key for run in runs(database)]
    assert len(keys) == 3 and len(set(keys)) == 3


def test_a_busy_rejecting_agent_skips_the_fire_quietly(
    settings: Settings, database: Database, frozen: Clock, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Text("done")))
    config = {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0}
    agent_id = make_agent(database, model="openai:gpt-test", config=config)

    async def body(schedulers: list[SchedulerService]) -> None:
        await schedulers[0].task_runs.trigger(agent_id, trigger="manual")
        for _ in range(1000):  # until the manual run is in its model call
            if openai_server.count():
                break
            await asyncio.sleep(0.01)
        frozen.at(10, 5, 1)
        await schedulers[0].tick()
        assert schedulers[0].skipped == 1
        openai_server.release()

    with_scheduler(settings, database, body)

    assert [run.trigger for run in runs(database)] == ["manual"]
    assert next_run_at(database, agent_id) == T0.replace(minute=10)


def test_pausing_and_changing_a_schedule_takes_effect_at_once(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    agent_id = make_agent(database)
    with database.session() as session:
        update_agent(agent_id, AgentUpdate(run_on_schedule=False), session=session)
        session.commit()

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 5, 1)
        assert await schedulers[0].tick() == []
        with database.session() as session:
            update_agent(
                agent_id, AgentUpdate(run_on_schedule=True, schedule="7 * * * *"), session=session
            )
            session.commit()
        frozen.at(10, 7, 1)
        assert len(await schedulers[0].tick()) == 1

    with_scheduler(settings, database, body)

    assert [run.idempotency_key for run in runs(database)] == [
        f"cron:{agent_id}:2026-11-25T10:07:00+00:00"
    ]
    assert next_run_at(database, agent_id) == T0.replace(hour=11, minute=7)


def test_every_fire_still_on_time_runs_even_two_in_one_tick(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    agent_id = make_agent(database, schedule="* * * * * */10", concurrency="queue")

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 2, 25)  # a slow tick: the fires at :10 and :20 are both due
        assert len(await schedulers[0].tick()) == 2
        assert schedulers[0].skipped == 0

    with_scheduler(settings, database, body)

    assert [run.idempotency_key for run in runs(database)] == [
        f"cron:{agent_id}:2026-11-25T10:02:10+00:00",
        f"cron:{agent_id}:2026-11-25T10:02:20+00:00",
    ]
