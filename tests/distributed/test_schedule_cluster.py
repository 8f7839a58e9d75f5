"""Three workers on one PostgreSQL database dispatch a schedule: exactly one run per fire."""

import itertools
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from tests.support.processes import WorkerProcess
from zerg import clock
from zerg.db import Database
from zerg.models import Run
from zerg.scheduler.cron import next_fire_time
from zerg.schemas.agents import AgentCreate, AgentUpdate
from zerg.services.agents import create_agent, update_agent
from zerg.services.users import LOCAL_OWNER
from zerg.settings import Settings


def test_three_workers_start_exactly_one_run_per_fire(pg_database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=pg_database_url)
    database = Database(settings)
    with database.session() as session:
        agent = create_agent(
            AgentCreate(
                name="tick",
                model="scripted:echo",
                task_instructions="tick",
                schedule="* * * * *",
                concurrency="queue",
            ),
            actor=LOCAL_OWNER,
            session=session,
            settings=settings,
        )
        # Every 2 s, so that a test sees several fires: stored directly, since the API refuses
        # schedules more frequent than a minute.
        agent.schedule = "* * * * * */2"
        agent.next_run_at = next_fire_time(agent.schedule, "UTC", clock.now())
        session.commit()
        agent_id = agent.id
    env = {
        "ZERG_DATABASE_URL": pg_database_url,
        "ZERG_DATA_DIR": str(tmp_path / "data"),
        "ZERG_SCHEDULER_INTERVAL_S": "0.2",
    }
    workers = [WorkerProcess(env, tmp_path / f"w{i}.log", f"w{i}") for i in (1, 2, 3)]
    try:
        for worker in workers:
            worker.spawn()
        for worker in workers:
            worker.wait_ready()
        time.sleep(10)  # about five fires with all three dispatching
        with database.session() as session:
            update_agent(
                agent_id,
                AgentUpdate(run_on_schedule=False),
                actor=LOCAL_OWNER,
                session=session,
                settings=settings,
            )
            session.commit()
        time.sleep(1)
    finally:
        for worker in workers:
            worker.stop()

    with database.session() as session:
        keys = list(session.scalars(select(Run.idempotency_key).order_by(Run.id)))
        statuses = set(session.scalars(select(Run.status)))
    database.dispose()
    fires = sorted(datetime.fromisoformat(key.split(":", 2)[2]) for key in keys if key)
    assert len(keys) == len(fires) == len(set(fires)) >= 4
    # One run per fire, none missing between the first and the last.
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(fires)} == {2.0}
    assert statuses == {"succeeded"}
