"""Runs execute as DBOS workflows: recorded durably before the trigger is answered, resumed after
a crash.

Progress inside a run is not checkpointed by DBOS steps: the run's thread is the checkpoint
(see `zerg.agents.runner`), which measured 3-4x faster than a step per model or tool call.
DBOS owns what it is good at: the durable record that a run must happen, and recovery of the
runs a dead process left behind. The workflow body is idempotent and re-enters the run.
"""

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, Queue, SetEnqueueOptions, SetWorkflowID
from sqlalchemy import event
from sqlalchemy.engine import make_url

from zerg.settings import Settings

logger = logging.getLogger(__name__)

# Pinned so a run left pending by a crash is recovered by the next release too; DBOS's
# default (a hash of the workflow code) strands such runs forever after any code change.
APPLICATION_VERSION = "zerg-runs-1"
WORKFLOW_NAME = "zerg.task_run"
# Runs of agents with `concurrency: queue` wait here, one at a time per agent (the partition).
AGENT_QUEUE = "zerg-agent-runs"
_MAX_PRIORITY = 2**31 - 1

Executor = Callable[[int], Awaitable[None]]
_executor: Executor | None = None


def workflow_id(run_id: int) -> str:
    return f"run-{run_id}"


@DBOS.workflow(name=WORKFLOW_NAME)
async def _task_run_workflow(run_id: int) -> None:
    if _executor is None:  # pragma: no cover - the engine sets it before launch
        raise RuntimeError("run engine not launched")
    await _executor(run_id)


def engine_database_url(settings: Settings) -> str:
    """Where DBOS keeps its records: beside the SQLite file, or the same PostgreSQL database."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite":
        return settings.resolved_database_url
    database = Path(url.database or "zerg.db")
    return f"sqlite:///{database.with_name(database.stem + '-engine.db')}"


def _sqlite_engine(url: str) -> sa.Engine:
    """DBOS's own SQLite settings, plus WAL and synchronous=NORMAL (~10x cheaper enqueues)."""
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = "IMMEDIATE"
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    return engine


class RunEngine:
    """Starts task runs as durable workflows and recovers the ones a crash interrupted."""

    def __init__(self, settings: Settings, execute: Executor) -> None:
        self.settings = settings
        self._execute = execute
        self._system_engine: sa.Engine | None = None
        self._queue: Queue | None = None
        self.launched = False

    def launch(self) -> None:
        """Start DBOS; it resumes this executor's pending runs in the background."""
        global _executor
        _executor = self._execute
        url = engine_database_url(self.settings)
        config: DBOSConfig = {
            "name": "zerg",
            "system_database_url": url,
            "application_version": APPLICATION_VERSION,
            "log_level": "WARNING",
            # Also how long shutdown waits for the listener thread to notice it should stop.
            "notification_listener_polling_interval_sec": 0.1,
        }
        if url.startswith("sqlite"):
            Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
            self._system_engine = _sqlite_engine(url)
            config["system_database_engine"] = self._system_engine
        DBOS(config=config)
        DBOS.launch()
        self._queue = DBOS.register_queue(
            AGENT_QUEUE,
            partition_concurrency=1,
            worker_concurrency=self.settings.worker_concurrency,
            polling_interval_sec=0.05,
            on_conflict="always_update",
        )
        self.launched = True

    async def submit(self, run_id: int, *, one_at_a_time_for: int | None = None) -> None:
        """Record the run's workflow durably, then start it at once on the running event loop,
        or — with `one_at_a_time_for=<agent id>` — queue it behind that agent's other runs.

        Submitting a run twice is harmless: the workflow id is derived from the run id.
        """
        with SetWorkflowID(workflow_id(run_id)):
            if one_at_a_time_for is None:
                await DBOS.start_workflow_async(_task_run_workflow, run_id)
                return
            assert self._queue is not None, "engine not launched"
            # Priority = run id: an agent's runs start in the order they were recorded, even
            # when their enqueues raced each other.
            priority = min(run_id, _MAX_PRIORITY)
            with SetEnqueueOptions(queue_partition_key=str(one_at_a_time_for), priority=priority):
                await self._queue.enqueue_async(_task_run_workflow, run_id)

    async def cancel(self, run_id: int) -> None:
        """Make sure a run still waiting in the queue never starts."""
        await DBOS.cancel_workflow_async(workflow_id(run_id))

    def shutdown(self) -> None:
        global _executor
        if self.launched:
            DBOS.destroy(workflow_completion_timeout_sec=0)
            self.launched = False
        _executor = None
        if self._system_engine is not None:
            self._system_engine.dispose()
            self._system_engine = None
