"""Worker heartbeats and the reaper's compare-and-set, in-process (no DBOS needed)."""

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import update

from zerg import clock
from zerg.db import Database
from zerg.errors import Conflict
from zerg.models import Worker
from zerg.services.workers import WorkerGone, WorkerRegistry
from zerg.settings import Settings


@dataclass
class FakeEngine:
    executor_id: str
    recovered: list[str] = field(default_factory=list)

    def recover_executor(self, executor_id: str) -> int:
        self.recovered.append(executor_id)
        return 1


@pytest.fixture
def database(pg_database_url: str) -> Iterator[Database]:
    db = Database(Settings(database_url=pg_database_url))
    yield db
    db.dispose()


def registry(database: Database, executor_id: str) -> WorkerRegistry:
    settings = Settings(database_url=database.url, worker_dead_after_s=10)
    return WorkerRegistry(settings, database, FakeEngine(executor_id))  # type: ignore[arg-type]


def registered(database: Database, executor_id: str) -> WorkerRegistry:
    """A registered worker that has been beating for long enough to reap."""
    worker = registry(database, executor_id)
    worker.register()
    worker.beating_since = time.monotonic() - 10
    return worker


def age(database: Database, executor_id: str, seconds: float) -> None:
    with database.session() as session:
        row = session.get(Worker, executor_id)
        assert row is not None
        row.heartbeat_at = clock.now() - timedelta(seconds=seconds)
        session.commit()


def test_a_live_executor_id_is_not_taken_twice(database: Database) -> None:
    registry(database, "w1").register()
    with database.session() as session:  # as if a process on another host held it
        session.execute(update(Worker).values(hostname="elsewhere"))
        session.commit()
    with pytest.raises(Conflict, match="another worker with id 'w1' is alive"):
        registry(database, "w1").register()
    age(database, "w1", 11)  # killed long enough ago: its id may be reused
    registry(database, "w1").register()


def test_a_worker_restarted_on_its_host_gets_its_id_back_at_once(database: Database) -> None:
    registry(database, "w1").register()
    with database.session() as session:  # the previous process died (kill -9)
        dead = subprocess.Popen(["true"])
        dead.wait()
        session.execute(update(Worker).values(pid=dead.pid))
        session.commit()
    registry(database, "w1").register()


def test_exactly_one_live_worker_takes_over_a_dead_one(database: Database) -> None:
    dead, first, second = (registered(database, f"w{i}") for i in (1, 2, 3))
    assert first.reap() == [] and second.reap() == []  # everyone is beating

    age(database, "w1", 11)
    assert first.reap() == ["w1"]
    assert second.reap() == []
    assert first.engine.recovered == ["w1"]  # type: ignore[attr-defined]
    assert second.engine.recovered == []  # type: ignore[attr-defined]
    with database.session() as session:
        row = session.get(Worker, "w1")
        assert row is not None
        assert (row.status, row.reaped_by) == ("reaped", "w2")

    # The dead worker, had it only been stalled, learns it must stop.
    with pytest.raises(WorkerGone):
        dead.beat()


def test_a_worker_that_stops_cleanly_is_taken_over_at_once(database: Database) -> None:
    leaving, staying = registered(database, "w1"), registered(database, "w2")
    leaving.stop()
    assert staying.reap() == ["w1"]
    # Restarted with the same id, it joins again.
    registry(database, "w1").register()


def test_no_reaping_before_beating_for_the_dead_after_time(database: Database) -> None:
    # After a database outage every heartbeat is stale: a worker that just got back must let
    # the others beat before it declares anyone dead.
    registered(database, "w1")
    age(database, "w1", 11)
    returning = registry(database, "w2")
    returning.register()
    assert returning.reap() == []
    returning.lost_database()
    assert returning.reap() == []
    returning.beating_since = time.monotonic() - 10
    assert returning.reap() == ["w1"]
