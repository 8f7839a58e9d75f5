"""Workers (distributed mode): the `zerg worker` loop, its heartbeat, and the reaper that
takes over the runs of a worker that died.

Each worker beats in the `workers` table. Every worker also reaps: a worker whose heartbeat
is older than `worker_dead_after_s` (or that stopped cleanly) is claimed by one compare-and-set
UPDATE, so exactly one live worker hands its pending runs back to the queue, where a live
worker resumes them from their threads.
"""

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from contextlib import suppress
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from zerg import clock, heap
from zerg.agents.models import close_model_clients
from zerg.db import Database
from zerg.engine import RunEngine
from zerg.errors import Conflict
from zerg.events.wiring import connect_bus
from zerg.metrics import Metrics
from zerg.metrics.exporter import MetricsExporter
from zerg.models import Worker
from zerg.scheduler.service import SchedulerService
from zerg.services.task_runs import TaskRuns
from zerg.settings import Settings

logger = logging.getLogger(__name__)

ALIVE, STOPPED, REAPED = "alive", "stopped", "reaped"


class WorkerGone(Exception):
    """This worker was declared dead and its runs were handed to others: it must stop."""


class WorkerRegistry:
    """This worker's row in `workers`, and the reaping of the others."""

    def __init__(self, settings: Settings, database: Database, engine: RunEngine) -> None:
        self.settings = settings
        self.database = database
        self.engine = engine
        self.executor_id = engine.executor_id
        self.instance = uuid.uuid4().hex
        # Since when (monotonic) this worker has reached the database without a break. It
        # reaps no one before beating for `worker_dead_after_s`: after a database outage every
        # heartbeat is stale, and the live workers must get to beat before anyone reaps.
        self.beating_since: float | None = None

    def register(self) -> None:
        """Take this worker's executor id; a conflict while another live process holds it."""
        now = clock.now()
        with self.database.session() as session:
            row = session.get(Worker, self.executor_id, with_for_update=True)
            if (
                row is not None
                and row.status == ALIVE
                and not self._is_stale(row, now)
                and _may_be_running(row.hostname, row.pid)
            ):
                raise Conflict(
                    f"another worker with id {self.executor_id!r} is alive (pid {row.pid} on "
                    f"{row.hostname}); give this one another --id (ZERG_EXECUTOR_ID), or wait "
                    f"{self.settings.worker_dead_after_s:g}s if that worker was killed",
                    code="worker_id_in_use",
                )
            if row is None:
                row = Worker(executor_id=self.executor_id)
                session.add(row)
            row.status = ALIVE
            row.instance = self.instance
            row.hostname = socket.gethostname()
            row.pid = os.getpid()
            row.started_at = row.heartbeat_at = now
            row.reaped_by = row.reaped_at = None
            try:
                session.commit()
                self.beating_since = time.monotonic()
            except IntegrityError as exc:  # another process registered the same id just now
                raise Conflict(
                    f"another worker registered the id {self.executor_id!r} at the same time",
                    code="worker_id_in_use",
                ) from exc

    def beat(self) -> None:
        with self.database.session() as session:
            result = session.execute(
                update(Worker)
                .where(self._mine(), Worker.status == ALIVE)
                .values(heartbeat_at=clock.now())
            )
            session.commit()
        if getattr(result, "rowcount", 0) != 1:
            raise WorkerGone(
                f"worker {self.executor_id} missed its heartbeats and its runs were taken over "
                "by another worker; stopping (restart it to rejoin)"
            )
        if self.beating_since is None:
            self.beating_since = time.monotonic()

    def lost_database(self) -> None:
        self.beating_since = None

    def stop(self) -> None:
        """Mark a clean exit: the other workers take over whatever this one left unfinished."""
        with self.database.session() as session:
            session.execute(
                update(Worker)
                .where(self._mine(), Worker.status == ALIVE)
                .values(status=STOPPED, heartbeat_at=clock.now())
            )
            session.commit()

    def reap(self) -> list[str]:
        """Take over the runs of every dead worker that no other worker claimed first."""
        if (
            self.beating_since is None
            or time.monotonic() - self.beating_since < self.settings.worker_dead_after_s
        ):
            return []
        cutoff = clock.now() - timedelta(seconds=self.settings.worker_dead_after_s)
        dead = or_(
            Worker.status == STOPPED, (Worker.status == ALIVE) & (Worker.heartbeat_at < cutoff)
        )
        with self.database.session() as session:
            candidates = session.execute(
                select(Worker.executor_id, Worker.instance, Worker.status).where(
                    Worker.executor_id != self.executor_id, dead
                )
            ).all()
        reaped = []
        for executor_id, instance, status in candidates:
            if self._claim(executor_id, instance, dead):
                self._take_over(executor_id, status)
                reaped.append(executor_id)
        return reaped

    def _claim(self, executor_id: str, instance: str, dead: ColumnElement[bool]) -> bool:
        """Compare-and-set: exactly one live worker moves a dead one to `reaped`."""
        with self.database.session() as session:
            result = session.execute(
                update(Worker)
                .where(Worker.executor_id == executor_id, Worker.instance == instance, dead)
                .values(status=REAPED, reaped_by=self.executor_id, reaped_at=clock.now())
            )
            session.commit()
        return bool(getattr(result, "rowcount", 0) == 1)

    def _take_over(self, executor_id: str, status: str) -> None:
        try:
            count = self.engine.recover_executor(executor_id)
        except Exception:
            logger.exception("could not take over the runs of worker %s; retrying", executor_id)
            with self.database.session() as session:  # let the next round try again
                session.execute(
                    update(Worker)
                    .where(Worker.executor_id == executor_id, Worker.status == REAPED)
                    .values(status=status)
                )
                session.commit()
            return
        logger.warning(
            "worker %s is gone (%s); took over its %d pending run(s)",
            executor_id,
            "stopped" if status == STOPPED else "no heartbeat",
            count,
        )

    def _mine(self) -> ColumnElement[bool]:
        return (Worker.executor_id == self.executor_id) & (Worker.instance == self.instance)

    def _is_stale(self, row: Worker, now: datetime) -> bool:
        return row.heartbeat_at < now - timedelta(seconds=self.settings.worker_dead_after_s)


def _may_be_running(hostname: str, pid: int) -> bool:
    """Whether the process that last held an executor id may still run. On the same host it
    can be checked, so a worker restarted right after a crash gets its id back at once."""
    if hostname != socket.gethostname():
        return True
    if pid == os.getpid():
        return False  # a restarted container reuses pids; two processes never share one
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def run_worker(settings: Settings) -> None:
    """Execute queued runs until SIGTERM/SIGINT; no HTTP. Raises `Conflict` when the executor
    id is taken and `WorkerGone` when this worker was declared dead."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    database = Database(settings)
    bus, relay = connect_bus(settings, database)
    assert relay is not None, "workers run on PostgreSQL"
    task_runs = TaskRuns(settings, database, bus, mode="worker")
    registry = WorkerRegistry(settings, database, task_runs.engine)
    scheduler: asyncio.Task[None] | None = None
    # The worker's own metrics (its loop's lag, its schedule fires) on ZERG_METRICS_PORT.
    metrics = Metrics()
    exporter = MetricsExporter(settings, metrics) if settings.metrics_port is not None else None
    loop_lag = asyncio.create_task(metrics.watch_loop_lag())
    collector = asyncio.create_task(heap.pace())
    try:
        # Registered before DBOS starts: starting resumes the runs recorded under this id.
        await asyncio.to_thread(registry.register)
        await asyncio.to_thread(relay.start)
        await task_runs.launch()
        heap.settle()
        service = SchedulerService(database, task_runs, interval_s=settings.scheduler_interval_s)
        metrics.watch_scheduler(service)
        scheduler = asyncio.create_task(service.run())
        if exporter is not None:
            logger.info("metrics at http://%s:%s/metrics", settings.metrics_host, exporter.port)
        logger.info("worker %s ready", registry.executor_id)
        while not stop.is_set():
            try:
                await asyncio.to_thread(registry.beat)
                await asyncio.to_thread(registry.reap)
            except SQLAlchemyError as exc:  # keep executing; beat again once it is back
                registry.lost_database()
                logger.warning("cannot reach the database for the heartbeat: %s", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.heartbeat_interval_s)
        logger.info("worker %s stopping", registry.executor_id)
    finally:
        for task in (scheduler, loop_lag, collector):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if exporter is not None:
            exporter.stop()
        task_runs.shutdown()
        await close_model_clients()
        await asyncio.to_thread(registry.stop)
        relay.stop()
        database.dispose()
