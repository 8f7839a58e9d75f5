"""SchedulerService with a controlled clock: each fire starts exactly one run."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from croniter import croniter
from sqlalchemy import select

from tests.support.openai_server import FakeOpenAI, Hang, Text
from zerg import clock
from zerg.db import Database
from zerg.events import Event, EventBus, EventType
from zerg.events.log import publish_on_commit
from zerg.models import Agent, Run, Thread
from zerg.scheduler import service as scheduler_service
from zerg.scheduler.cron import due_between
from zerg.scheduler.service import SchedulerService
from zerg.schemas.agents import AgentCreate, AgentUpdate
from zerg.services.agents import create_agent, update_agent
from zerg.services.task_runs import TaskRuns
from zerg.services.users import LOCAL_OWNER
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


def make_agent(settings: Settings, database: Database, **fields: Any) -> int:
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
        agent = create_agent(data, actor=LOCAL_OWNER, session=session, settings=settings)
        session.commit()
        return agent.id


def store_schedule(database: Database, agent_id: int, schedule: str, next_run: datetime) -> None:
    """Write a schedule the API refuses (seconds, never firing), as a row stored before the
    API checked schedules would hold it."""
    with database.session() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        agent.schedule, agent.next_run_at = schedule, next_run
        session.commit()


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
    agent_id = make_agent(settings, database)
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


def test_a_fire_announces_the_agents_next_run(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    agent_id = make_agent(settings, database)
    bus = EventBus()
    seen: list[Event] = []
    bus.add_listener(seen.append)
    undo = publish_on_commit(database.sessionmaker, bus)

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 5, 1)
        await schedulers[0].tick()

    try:
        with_scheduler(settings, database, body)
    finally:
        undo()

    # A dashboard shows the next fire time: the move is an event, stored with its id.
    [moved] = [e for e in seen if e.type == EventType.AGENT_UPDATED]
    assert moved.data == {"id": agent_id, "next_run_at": "2026-11-25T10:10:00Z"}
    assert moved.id is not None and moved.agent_id == agent_id
    assert next_run_at(database, agent_id) == T0.replace(minute=10)


@pytest.mark.parametrize(("policy", "expected"), [("run_once", 1), ("skip", 0)])
def test_fires_missed_while_down_follow_the_policy(
    settings: Settings,
    database: Database,
    frozen: Clock,
    caplog: pytest.LogCaptureFixture,
    policy: str,
    expected: int,
) -> None:
    agent_id = make_agent(settings, database, missed_fires=policy)

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(12, 3)  # down from 10:02 to 12:03: fires 10:05 ... 12:00 were missed
        with caplog.at_level(logging.INFO, logger="zerg.scheduler.service"):
            await schedulers[0].tick()
        assert (schedulers[0].missed, schedulers[0].skipped) == (1, 0)

    with_scheduler(settings, database, body)

    started = runs(database)
    assert len(started) == expected
    if started:  # the one catch-up run is for the latest missed fire
        assert started[0].idempotency_key == f"cron:{agent_id}:2026-11-25T12:00:00+00:00"
    assert next_run_at(database, agent_id) == T0.replace(hour=12, minute=5)
    [line] = [
        r.getMessage()
        for r in caplog.records
        if r.name == "zerg.scheduler.service" and "missed" in r.getMessage()
    ]
    assert "from 2026-11-25T10:05:00+00:00 to 2026-11-25T12:00:00+00:00" in line
    assert f"missed_fires={policy}" in line


def test_many_schedulers_fire_each_fire_once(
    settings: Settings, database: Database, frozen: Clock
) -> None:
    make_agent(settings, database, concurrency="queue")

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
    agent_id = make_agent(settings, database, model="openai:gpt-test", config=config)

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
    agent_id = make_agent(settings, database)
    with database.session() as session:
        update_agent(
            agent_id,
            AgentUpdate(run_on_schedule=False),
            actor=LOCAL_OWNER,
            session=session,
            settings=settings,
        )
        session.commit()

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 5, 1)
        assert await schedulers[0].tick() == []
        with database.session() as session:
            update_agent(
                agent_id,
                AgentUpdate(run_on_schedule=True, schedule="7 * * * *"),
                actor=LOCAL_OWNER,
                session=session,
                settings=settings,
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
    agent_id = make_agent(settings, database, concurrency="queue")
    store_schedule(database, agent_id, "* * * * * */10", T0.replace(second=10))

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 2, 25)  # a slow tick: the fires at :10 and :20 are both due
        assert len(await schedulers[0].tick()) == 2
        assert schedulers[0].skipped == 0

    with_scheduler(settings, database, body)

    assert [run.idempotency_key for run in runs(database)] == [
        f"cron:{agent_id}:2026-11-25T10:02:10+00:00",
        f"cron:{agent_id}:2026-11-25T10:02:20+00:00",
    ]


def test_a_month_of_downtime_costs_a_few_cron_steps_not_one_per_missed_fire(
    settings: Settings, database: Database, frozen: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent_id = make_agent(settings, database, schedule="* * * * *", concurrency="queue")
    steps = count_cron_steps(monkeypatch)
    spans = spy_on_due_between(monkeypatch)

    async def body(schedulers: list[SchedulerService]) -> None:
        # Down from 10:02 for 30 days: 43,199 fires missed, the one at 10:02:00 still on time.
        frozen.now = T0.replace(day=25, second=30) + timedelta(days=30)
        assert len(await schedulers[0].tick()) == 2
        assert schedulers[0].missed == 1

    with_scheduler(settings, database, body)

    assert steps["count"] < 30, steps
    assert spans and all(until - since <= timedelta(minutes=2) for since, until in spans)
    late = (T0 + timedelta(days=30)).replace(second=0)
    assert [run.idempotency_key for run in runs(database)] == [
        f"cron:{agent_id}:{(late - timedelta(minutes=1)).isoformat()}",  # the latest missed
        f"cron:{agent_id}:{late.isoformat()}",  # the one on time
    ]
    assert next_run_at(database, agent_id) == late + timedelta(minutes=1)


def test_three_hours_of_a_per_second_schedule_cost_a_minute_of_steps(
    settings: Settings, database: Database, frozen: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A per-second schedule stored before the API refused them, after 3 hours down: only the
    fires of the last minute (the on-time window) are walked, not 10,800."""
    agent_id = make_agent(settings, database, missed_fires="skip", concurrency="queue")
    store_schedule(database, agent_id, "* * * * * */10", T0.replace(second=10))
    steps = count_cron_steps(monkeypatch)

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(13, 2, 5)
        assert len(await schedulers[0].tick()) == 6  # 13:01:10 ... 13:02:00 are on time

    with_scheduler(settings, database, body)

    assert steps["count"] < 30, steps


@pytest.mark.parametrize("stored", ["0 0 31 2 *", "not a cron expression", "0 0 1 1 * 0 1999"])
def test_an_agent_whose_stored_schedule_cannot_fire_does_not_stop_the_others(
    settings: Settings,
    database: Database,
    frozen: Clock,
    caplog: pytest.LogCaptureFixture,
    stored: str,
) -> None:
    broken = make_agent(settings, database)
    store_schedule(database, broken, stored, T0.replace(minute=5))
    healthy = make_agent(settings, database)

    async def body(schedulers: list[SchedulerService]) -> None:
        frozen.at(10, 5, 1)
        with caplog.at_level(logging.WARNING, logger="zerg.scheduler.service"):
            assert await schedulers[0].tick() == [f"cron:{healthy}:2026-11-25T10:05:00+00:00"]
            frozen.at(10, 10, 1)
            assert len(await schedulers[0].tick()) == 1  # the broken one is not retried

    with_scheduler(settings, database, body)

    assert next_run_at(database, broken) is None
    [warning] = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "zerg.scheduler.service"
    ]
    assert f"agent {broken}: schedule stopped" in warning and stored in warning
    assert {run.agent_id for run in runs(database)} == {healthy}


def count_cron_steps(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts croniter's steps (forward and backward) from now on."""
    steps = {"count": 0}
    for name in ("get_next", "get_prev"):
        original = getattr(croniter, name)

        def counted(self: croniter, *args: Any, _original: Any = original, **kw: Any) -> Any:
            steps["count"] += 1
            return _original(self, *args, **kw)

        monkeypatch.setattr(croniter, name, counted)
    return steps


def spy_on_due_between(monkeypatch: pytest.MonkeyPatch) -> list[tuple[datetime, datetime]]:
    """Records the (since, until) span of every due_between call the scheduler makes."""
    spans: list[tuple[datetime, datetime]] = []

    def spy(expression: str, timezone: str, since: datetime, until: datetime) -> list[datetime]:
        spans.append((since, until))
        return due_between(expression, timezone, since, until)

    monkeypatch.setattr(scheduler_service, "due_between", spy)
    return spans
