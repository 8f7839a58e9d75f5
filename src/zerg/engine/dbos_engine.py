"""Runs execute as DBOS workflows: recorded durably before the trigger is answered, resumed after
a crash.

Progress inside a run is not checkpointed by DBOS steps: the run's thread is the checkpoint
(see `zerg.agents.runner`), which measured 3-4x faster than a step per model or tool call.
DBOS owns what it is good at: the durable record that a run must happen, and recovery of the
runs a dead process left behind. The workflow body is idempotent and re-enters the run.

Distributed mode (PostgreSQL): API replicas do not run DBOS at all — a launched DBOS always
dequeues DBOS's internal queue, where recovered workflows go — they enqueue with a
`DBOSClient`, in the same transaction as the run row. Workers launch DBOS under their own
stable executor id and execute what the queues hold.
"""

import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from dbos import (
    DBOS,
    DBOSClient,
    DBOSConfig,
    EnqueueOptions,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
)
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url

from zerg import clock
from zerg.db.engine import WAL_AUTOCHECKPOINT_PAGES, private_sqlite_file
from zerg.engine import inline
from zerg.settings import Settings

logger = logging.getLogger(__name__)

# Pinned so a run left pending by a crash is recovered by the next release too; DBOS's
# default (a hash of the workflow code) strands such runs forever after any code change.
APPLICATION_VERSION = "zerg-runs-1"
WORKFLOW_NAME = "zerg.task_run"
APP_NAME = "zerg"
# Runs of agents with `concurrency: queue` (in distributed mode: every run) wait here, one at
# a time per agent (the partition).
AGENT_QUEUE = "zerg-agent-runs"
_MAX_PRIORITY = 2**31 - 1
_STATUS_BATCH = 500
# How often the queue is polled. Workers take every run from it, so they poll often; embedded
# mode queues only the runs of `concurrency: queue` agents, and each poll costs CPU (a few ms
# on SQLite) even when nothing waits.
QUEUE_POLL_S: dict[str, float] = {"embedded": 0.1, "worker": 0.05, "api": 0.05}

# Where the runs of this process go: `embedded` executes them here (`zerg serve`); `api` only
# enqueues them for the workers (`zerg serve --no-execute`); `worker` executes queued runs and
# takes over the runs of dead workers (`zerg worker`). `api` and `worker` need PostgreSQL.
EngineMode = Literal["embedded", "api", "worker"]
EMBEDDED_EXECUTOR_ID = "local"

# Called with the run id and the id of the workflow executing it: a run executes only under
# the workflow id stored on it, so a stale workflow can never execute another run.
Executor = Callable[[int, str | None], Awaitable[None]]
_executor: Executor | None = None
# Workflows that ended without finishing their run (the reconciliation ends such runs).
ENDED_STATUSES = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})


def notify_workflow_id(run_workflow_id: str) -> str:
    """The run's notification workflow: derived from its own, so it is as unique."""
    return "notify-" + run_workflow_id.removeprefix("run-")


@DBOS.workflow(name=WORKFLOW_NAME)
async def _task_run_workflow(run_id: int) -> None:
    if _executor is None:  # pragma: no cover - the engine sets it before launch
        raise RuntimeError("run engine not launched")
    await _executor(run_id, DBOS.workflow_id)


Notifier = Callable[[int], Awaitable[None]]
_notifier: Notifier | None = None
# A finished run's notification is retried with backoff: 1, 2, 4, ... 64 s between attempts.
NOTIFY_ATTEMPTS = 8


@DBOS.step(
    name="zerg.notify.deliver",
    retries_allowed=True,
    max_attempts=NOTIFY_ATTEMPTS,
    interval_seconds=1.0,
    backoff_rate=2.0,
)
async def _deliver_step(run_id: int) -> None:
    if _notifier is None:  # pragma: no cover - the engine sets it before launch
        raise RuntimeError("run engine not launched")
    await _notifier(run_id)


@DBOS.workflow(name="zerg.notify")
async def _notify_workflow(run_id: int) -> None:
    await _deliver_step(run_id)


def engine_database_url(settings: Settings) -> str:
    """Where DBOS keeps its records: beside the SQLite file, or the same PostgreSQL database."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite":
        return settings.resolved_database_url
    database = Path(url.database or "zerg.db")
    return f"sqlite:///{database.with_name(database.stem + '-engine.db')}"


def _sqlite_engine(url: str) -> sa.Engine:
    """DBOS's own SQLite settings, plus WAL and synchronous=NORMAL (~10x cheaper enqueues), on a
    file created private like the main database's."""
    private_sqlite_file(Path(make_url(url).database or ""))
    engine = sa.create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = "IMMEDIATE"
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    return engine


def _enqueue_options(run_id: int, partition: str, workflow_id: str) -> EnqueueOptions:
    """A run on the workers' queue: one at a time per partition (an agent's task runs, or a
    thread's chat turns), in the order runs were recorded."""
    return {
        "workflow_name": WORKFLOW_NAME,
        "queue_name": AGENT_QUEUE,
        "workflow_id": workflow_id,
        "app_version": APPLICATION_VERSION,
        "queue_partition_key": partition,
        "priority": min(run_id, _MAX_PRIORITY),
    }


def claim_engine_file(path: Path, instance_id: str) -> None:
    """Make the embedded engine file at `path` belong to database `instance_id`.

    A file that names another database is moved aside (its workflows are runs of a database
    that is gone) with a warning that says where; a file that names none (made before files
    were named) is adopted.
    """
    if path.exists():
        with contextlib.closing(sqlite3.connect(path)) as conn:
            owner = _engine_file_owner(conn)
        if owner is not None and owner != instance_id:
            aside = path.with_name(f"{path.stem}.orphaned-{clock.now():%Y%m%dT%H%M%S}{path.suffix}")
            for suffix in ("", "-wal", "-shm"):
                companion = Path(f"{path}{suffix}")
                if companion.exists():
                    companion.rename(f"{aside}{suffix}")
            logger.warning(
                "the run engine file %s belongs to another Zerg database (its runs are not in "
                "this one): moved it to %s and started a fresh one; delete it once you no "
                "longer need it",
                path,
                aside,
            )
    private_sqlite_file(path)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        # Names the Zerg database the file belongs to.
        conn.execute("CREATE TABLE IF NOT EXISTS zerg_instance (id TEXT NOT NULL)")
        if _engine_file_owner(conn) is None:
            conn.execute("INSERT INTO zerg_instance (id) VALUES (?)", (instance_id,))


def _engine_file_owner(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT id FROM zerg_instance").fetchone()
    except sqlite3.OperationalError:  # no such table: a file made before files were named
        return None
    return None if row is None else str(row[0])


class RunEngine:
    """Starts task runs as durable workflows and recovers the ones a crash interrupted."""

    def __init__(
        self,
        settings: Settings,
        execute: Executor,
        mode: EngineMode = "embedded",
        *,
        notify: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.mode = mode
        self._execute = execute
        self._notify = notify
        self._system_engine: sa.Engine | None = None
        self._queue: Queue | None = None
        self._client: DBOSClient | None = None
        self.launched = False

    @property
    def distributed(self) -> bool:
        return self.mode != "embedded"

    @property
    def executor_id(self) -> str:
        """The DBOS executor id runs of this process are recorded under."""
        if self.mode == "worker":
            return self.settings.resolved_executor_id
        return EMBEDDED_EXECUTOR_ID

    def launch(self, instance_id: str | None = None) -> None:
        """Start DBOS (it resumes this executor's pending runs in the background); an API
        replica only connects a client that enqueues.

        `instance_id` names Zerg's database: an embedded engine file that belongs to another
        database (the user deleted zerg.db but not the file beside it) is moved aside and a
        fresh one started, so no old workflow is mistaken for a run of this database.
        """
        url = engine_database_url(self.settings)
        if self.distributed and url.startswith("sqlite"):
            raise ValueError(
                "distributed mode needs PostgreSQL: "
                "set ZERG_DATABASE_URL=postgresql+psycopg://user:password@host/dbname"
            )
        if self.distributed:
            # API replicas may start before any worker: create DBOS's tables (idempotent).
            DBOS.migrate(url)
            self._client = DBOSClient(system_database_url=url, application_name=APP_NAME)
        if self.mode == "api":
            self.launched = True
            return
        global _executor, _notifier
        _executor = self._execute
        _notifier = self._notify
        config: DBOSConfig = {
            "name": APP_NAME,
            "system_database_url": url,
            "application_version": APPLICATION_VERSION,
            "executor_id": self.executor_id,
            "log_level": "WARNING",
            # Also how long shutdown waits for the listener thread to notice it should stop.
            "notification_listener_polling_interval_sec": 0.1,
        }
        if url.startswith("sqlite"):
            self._system_engine = _sqlite_engine(url)
            config["system_database_engine"] = self._system_engine
            if instance_id is not None:
                claim_engine_file(Path(make_url(url).database or ""), instance_id)
        else:
            # DBOS retries its statements until the database answers again, so it needs no
            # round trip before each one to check its connection.
            config["db_engine_kwargs"] = {"pool_pre_ping": False}
        dbos = DBOS(config=config)
        DBOS.launch()
        if self.mode == "embedded" and url.startswith("sqlite"):
            inline.install(dbos)
        self._queue = DBOS.register_queue(
            AGENT_QUEUE,
            partition_concurrency=1,
            worker_concurrency=self.settings.worker_concurrency,
            polling_interval_sec=QUEUE_POLL_S[self.mode],
            on_conflict="always_update",
        )
        self.launched = True

    async def submit(self, run_id: int, partition: str, workflow_id: str, *, queued: bool) -> None:
        """Record the run's workflow durably, then start it at once on the running event loop,
        or — `queued` — queue it behind the other runs of its `partition` (an agent's id, or
        `thread-<id>` for chat turns).

        In distributed mode every run is queued for the workers, one at a time per partition
        (an agent with `concurrency: reject` never has two active runs anyway).
        Submitting a run twice is harmless: its workflow id is stored on the run.
        """
        if self._client is not None:
            options = _enqueue_options(run_id, partition, workflow_id)
            await self._client.enqueue_async(options, run_id)
            return
        with SetWorkflowID(workflow_id):
            if not queued:
                await DBOS.start_workflow_async(_task_run_workflow, run_id)
                return
            assert self._queue is not None, "engine not launched"
            # Priority = run id: an agent's runs start in the order they were recorded, even
            # when their enqueues raced each other.
            priority = min(run_id, _MAX_PRIORITY)
            with SetEnqueueOptions(queue_partition_key=partition, priority=priority):
                await self._queue.enqueue_async(_task_run_workflow, run_id)

    def enqueue_in_transaction(
        self, db: Connection, run_id: int, partition: str, workflow_id: str
    ) -> None:
        """Distributed mode: queue the run for the workers in the caller's transaction on the
        same PostgreSQL database, so the run and its workflow commit (or vanish) together."""
        assert self._client is not None, "only distributed mode enqueues in a transaction"
        options = _enqueue_options(run_id, partition, workflow_id)
        self._client.enqueue_in_transaction(db, options, run_id)

    async def notify(self, run_id: int, workflow_id: str) -> None:
        """Durably deliver the finished run's notification, retried with backoff; starting it
        twice is harmless (its workflow id is derived from the run's)."""
        with SetWorkflowID(notify_workflow_id(workflow_id)):
            await DBOS.start_workflow_async(_notify_workflow, run_id)

    async def cancel(self, workflow_id: str) -> None:
        """Make sure a run still waiting in the queue never starts."""
        if self._client is not None:
            await self._client.cancel_workflow_async(workflow_id)
            return
        await DBOS.cancel_workflow_async(workflow_id)

    async def workflow_statuses(self, workflow_ids: Sequence[str]) -> dict[str, str]:
        """The engine's status (`PENDING`, `ENQUEUED`, `SUCCESS`, ...) of each workflow it
        knows among `workflow_ids`; a missing id has no workflow."""
        found: dict[str, str] = {}
        for start in range(0, len(workflow_ids), _STATUS_BATCH):
            batch = list(workflow_ids[start : start + _STATUS_BATCH])
            if self._client is not None:
                listed = await self._client.list_workflows_async(
                    workflow_ids=batch, load_input=False, load_output=False
                )
            else:
                listed = await DBOS.list_workflows_async(
                    workflow_ids=batch, load_input=False, load_output=False
                )
            found.update((w.workflow_id, w.status) for w in listed)
        return found

    def recover_executor(self, executor_id: str) -> int:
        """Take over the pending runs of a dead worker: they go back to their queue, where a
        live worker picks them up and resumes them. Returns how many there were.

        Open-source DBOS only recovers its own executor's workflows on launch; this is its
        private recovery entry point (dbos 3.4), kept here so nothing else depends on it.
        Idempotent: a workflow another worker already picked up is left alone.
        """
        assert self.mode == "worker", "only a worker recovers runs"
        handles = DBOS._recover_pending_workflows([executor_id])
        return len(handles)

    def shutdown(self) -> None:
        global _executor, _notifier
        if self._client is not None:
            self._client.destroy()
            self._client = None
        if self.launched and self.mode != "api":
            DBOS.destroy(workflow_completion_timeout_sec=0)
        self.launched = False
        if self.mode != "api":
            _executor = None
            _notifier = None
        if self._system_engine is not None:
            self._system_engine.dispose()
            self._system_engine = None
