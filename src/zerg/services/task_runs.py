"""Task runs: `execute_agent_task`, the one path every trigger's run takes (DESIGN §1).

A trigger records a queued run and hands it to the run engine; the engine calls
`execute_agent_task`, which is idempotent: after a crash it is simply called again and resumes
the run from its thread.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from zerg import clock, heap
from zerg.agents.models import describe_model_error
from zerg.agents.tools import HttpGetPolicy
from zerg.agents.turns import Priority, turn, waiting
from zerg.db import Database
from zerg.engine import ENDED_STATUSES, EngineMode, RunEngine
from zerg.errors import BudgetExceeded, Conflict
from zerg.events import Event, EventBus, EventType
from zerg.events import log as event_log
from zerg.logging import run_context
from zerg.models import Agent, Instance, Run
from zerg.schemas.agents import AgentStatus
from zerg.schemas.runs import RunRead, RunStatus, RunTrigger
from zerg.schemas.threads import MessageRead, ThreadRead, ThreadType
from zerg.services import notifications
from zerg.services.budgets import Limits, check_run
from zerg.services.run_records import (
    Recorded,
    RunJob,
    agent_after_run,
    cancelled_among,
    check_run_visible,
    load_job,
    message_of,
    open_runs,
    partition_of,
    record_chat_turn,
    record_run,
    run_status,
    set_agent_status,
    thread_busy,
    update_finished,
    update_running,
    usage_of_thread,
    workflow_of,
)
from zerg.services.runs import FINAL_STATUSES, read_run, transition_run
from zerg.services.threads import ThreadService
from zerg.services.users import Actor
from zerg.settings import Settings

if TYPE_CHECKING:  # the agent loop is imported when the first run needs it
    from zerg.agents.runner import Finish, RunUsage

logger = logging.getLogger(__name__)

CANCELLED_BY_REQUEST = "cancelled on request"
# A cancel reaches the process executing the run as an event (in process, or over LISTEN/NOTIFY
# from another one); in distributed mode a poll this often catches one lost on the way.
CANCEL_SAFETY_POLL_S = 5.0
# The periodic reconciliation leaves runs younger than this alone: their trigger may still be
# handing them to the engine.
RECONCILE_GRACE_S = 30.0
# How often a waiting request re-reads its run besides listening for its events.
WAIT_RECHECK_S = 2.0

THREAD_TYPE_OF: dict[str, ThreadType] = {
    "manual": "manual",
    "api": "api",
    "schedule": "scheduled",
    "webhook": "webhook",
}
_TITLE_OF = {
    "manual": "Manual run",
    "api": "API run",
    "schedule": "Scheduled run",
    "webhook": "Webhook run",
}


class TaskRuns:
    """Starts, executes and waits for task runs. One per process, built by its entry point."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        bus: EventBus,
        *,
        http_policy: HttpGetPolicy | None = None,
        mode: EngineMode | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.bus = bus
        self.http_policy = http_policy or HttpGetPolicy(allowed_networks=settings.allowed_networks)
        if mode is None:
            mode = "embedded" if settings.execute_runs else "api"
        self.engine = RunEngine(
            settings, self.execute_agent_task, mode, notify=self.deliver_notification
        )
        self._lock = asyncio.Lock()
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        # Runs executing in this process: run id -> (agent id, the task executing it).
        self._executing: dict[int, tuple[int, asyncio.Task[Any]]] = {}
        self._background: list[asyncio.Task[None]] = []
        bus.add_listener(self._interrupt_if_cancelled)

    # -- lifecycle -------------------------------------------------------------------------

    async def launch(self) -> None:
        """Start the engine, give every unfinished run a workflow that will move it, and keep
        checking that (an API replica leaves all that to the workers)."""
        with self.database.transaction() as db:
            instance_id = db.execute(select(Instance.id)).scalar_one()
        await asyncio.to_thread(self.engine.launch, instance_id)
        if self.engine.mode == "api":
            return
        await self.reconcile()
        if self.engine.mode == "embedded":
            self._release_stuck_agents()
        self._background.append(asyncio.create_task(self._reconcile_forever()))
        if self.engine.distributed:
            self._background.append(asyncio.create_task(self._poll_cancels_forever()))

    def _release_stuck_agents(self) -> None:
        """An agent marked `running` without an unfinished run is left over from a crash at
        an unlucky moment: in embedded mode nothing else is running it, so it is `idle`."""
        open_run = (
            select(Run.id)
            .where(Run.agent_id == Agent.id, Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
            .exists()
        )
        with self.database.session() as session:
            session.execute(
                update(Agent)
                .where(Agent.status == AgentStatus.RUNNING, ~open_run)
                .values(status=AgentStatus.IDLE)
                .execution_options(synchronize_session=False)
            )
            session.commit()

    def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        self._background.clear()
        self.engine.shutdown()

    # -- reconciliation --------------------------------------------------------------------

    async def reconcile(self, *, grace_s: float = 0.0) -> int:
        """Make sure no unfinished run waits for a workflow that will never move it: start
        the run whose workflow is missing (recorded just before a crash, or the engine's
        records were lost), and end `failed` the run whose workflow ended without finishing
        it. Leaves runs recorded less than `grace_s` ago alone. Returns how many it mended.
        """
        cutoff = clock.now() - timedelta(seconds=grace_s)
        with self.database.transaction() as db:
            runs = open_runs(db, cutoff)
        if not runs:
            return 0
        statuses = await self.engine.workflow_statuses([run.workflow_id for run in runs])
        mended = 0
        for run in runs:
            status = statuses.get(run.workflow_id)
            if status is None:
                logger.warning("run %s had no workflow in the run engine: starting it", run.id)
                queued = run.concurrency == "queue" and run.trigger != "chat"
                partition = partition_of(run.trigger, run.agent_id, run.thread_id)
                await self.engine.submit(run.id, partition, run.workflow_id, queued=queued)
            elif status in ENDED_STATUSES:
                self._fail_stranded(run.id, status)
            else:
                continue
            mended += 1
        return mended

    def _fail_stranded(self, run_id: int, status: str) -> None:
        with self.database.transaction() as db:
            job = load_job(db, run_id)
        if job is None:
            return
        message = (
            f"the run engine's workflow for this run ended ({status}) without finishing it; "
            "start the run again"
        )
        logger.warning("run %s: %s", run_id, message)
        self._finish(job, job.started_at, job.thread_id, RunStatus.FAILED, message)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_s)
            try:
                await self.reconcile(grace_s=RECONCILE_GRACE_S)
            except Exception:
                logger.exception("run reconciliation failed")
            try:
                self.prune_events()
            except Exception:
                logger.exception("pruning old events failed")

    def prune_events(self) -> int:
        """Forget the events older than `ZERG_EVENT_RETENTION_DAYS`; returns how many."""
        cutoff = clock.now() - timedelta(days=self.settings.event_retention_days)
        with self.database.transaction() as db:
            return event_log.prune(db, cutoff)

    # -- triggers --------------------------------------------------------------------------

    async def trigger(
        self,
        agent_id: int,
        *,
        trigger: RunTrigger,
        idempotency_key: str | None = None,
        input: Any = None,
        delivery_hash: str | None = None,
        token_id: int | None = None,
        actor: Actor | None = None,
    ) -> RunRead:
        """Record a run durably, start it, and answer at once with the queued run.

        `input` (e.g. a webhook's payload) is shown to the agent after its task instructions;
        `delivery_hash` (a webhook body's SHA-256) is stored to recognise replays, and
        `token_id` (the API token that started the run) to say who did. An `actor` starts
        runs of the agents they may see only (None: Zerg itself, e.g. a schedule or a signed
        webhook, acting as the agent's owner).
        """
        # An agent's queued runs start by run id, but only among those already enqueued: so
        # in embedded mode they are enqueued in the order they were recorded, one at a time.
        # (No await in the critical section otherwise: a direct start is not held up.)
        partition = partition_of(trigger, agent_id, None)
        async with self._recording_lock():
            recorded, events = self._record(
                agent_id, trigger, idempotency_key, input, delivery_hash, token_id, actor
            )
            snapshot, created, queued, workflow_id, _owner = recorded
            self.bus.publish_all(events)
            if created and queued and not self.engine.distributed:
                await self.engine.submit(snapshot.id, partition, workflow_id, queued=True)
        if created and not queued and not self.engine.distributed:
            await self.engine.submit(snapshot.id, partition, workflow_id, queued=False)
        return snapshot

    def _record(
        self,
        agent_id: int,
        trigger: RunTrigger,
        idempotency_key: str | None,
        input: Any,
        delivery_hash: str | None,
        token_id: int | None,
        actor: Actor | None,
    ) -> tuple[Recorded, list[Event]]:
        """Record the run (in distributed mode, with its place in the workers' queue) and its
        `run_created` event, to publish."""
        for attempt in (1, 2):
            try:
                with self.database.transaction() as db:
                    recorded = record_run(
                        agent_id,
                        trigger=trigger,
                        idempotency_key=idempotency_key,
                        input=input,
                        delivery_hash=delivery_hash,
                        token_id=token_id,
                        actor=actor,
                        max_queued=self.settings.max_queued_runs,
                        db=db,
                    )
                    events = []
                    if recorded.created:
                        created = _run_event(EventType.RUN_CREATED, recorded.run, recorded.owner_id)
                        events = event_log.store(db, [created])
                    if recorded.created and self.engine.distributed:
                        # The run and its place in the queue commit together.
                        partition = partition_of(trigger, agent_id, None)
                        self.engine.enqueue_in_transaction(
                            db, recorded.run.id, partition, recorded.workflow_id
                        )
                return recorded, events
            except IntegrityError:  # the same key raced in from another request
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _recording_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:  # an asyncio.Lock belongs to one event loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def wait(self, run_id: int, timeout_s: float) -> RunRead:
        """The run once it has finished, or as it stands after `timeout_s`."""
        async with waiting():  # a request waiting for a run leaves its turn to the runs
            return await self._wait(run_id, timeout_s)

    async def _wait(self, run_id: int, timeout_s: float) -> RunRead:
        subscription = self.bus.subscribe(
            [f"run:{run_id}"],
            accept=lambda e: e.type == EventType.RUN_UPDATED and e.data["status"] in FINAL_STATUSES,
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            current = self._read_run(run_id)
            while current.status not in FINAL_STATUSES and loop.time() < deadline:
                # Re-read now and then too: an event from another process can be lost while
                # the bus reconnects to the database.
                try:
                    async with asyncio.timeout(min(deadline - loop.time(), WAIT_RECHECK_S)):
                        event = await subscription.get()
                except TimeoutError:
                    current = self._read_run(run_id)
                    continue
                # The event carries the run as committed.
                return RunRead.model_validate(event.data)
            return current
        finally:
            self.bus.unsubscribe(subscription)

    def _read_run(self, run_id: int) -> RunRead:
        with self.database.read() as db:
            return read_run(run_id, db=db)

    # -- execution -------------------------------------------------------------------------

    async def execute_agent_task(self, run_id: int, workflow_id: str | None = None) -> None:
        """Steps 2-8 of a task run. Safe to call again for the same run: it resumes.

        `workflow_id` is the engine workflow calling: the run executes only under the one
        stored on it (a workflow left from a deleted run or a reset database does nothing).
        """
        async with turn(Priority.RUN):  # the run's own work takes turns on the event loop
            with self.database.read() as db:
                job = load_job(db, run_id)
            if job is None:
                return  # deleted with its agent
            if workflow_id is not None and workflow_id != job.workflow_id:
                logger.warning("workflow %s is not run %s's: left alone", workflow_id, run_id)
                return
            with run_context(run_id, job.agent_id, job.trigger):  # on every log line of the run
                if job.status not in FINAL_STATUSES:  # else finished already: only the notice
                    await self._execute(job)
                if job.notify_url is not None:
                    # Also when re-entered after a crash: starting the notice twice is harmless.
                    await self.engine.notify(run_id, job.workflow_id)

    async def deliver_notification(self, run_id: int) -> None:
        """One attempt to tell the agent's notify_url that run `run_id` finished."""
        await notifications.deliver(self.database, run_id, self.http_policy)

    async def _execute(self, job: RunJob) -> None:
        task = asyncio.current_task()
        assert task is not None
        async with waiting():  # the cut-off runs need turns to let go
            await self._wait_for_cut_off_runs(job.agent_id, task)
        self._executing[job.run_id] = (job.agent_id, task)
        try:
            await self._execute_registered(job, task)
        finally:
            self._executing.pop(job.run_id, None)

    async def _execute_registered(self, job: RunJob, task: asyncio.Task[Any]) -> None:
        started_at, thread_id = job.started_at, job.thread_id
        stream = RunStream(self.bus, job)
        try:
            begun = self._begin(job, stream)
            if begun is None:
                return
            thread, started_at, messages = begun
            thread_id = thread.id
            limits = Limits.of(job)
            if not heap.loaded("agent loop"):
                async with waiting():  # the first run of the process loads the agent loop
                    await heap.load_once("agent loop", _load_agent_loop)
            from zerg.agents.runner import AgentRunner

            runner = AgentRunner(
                job,
                settings=self.settings,
                http_policy=self.http_policy,
                on_message=self._on_message(job, stream, limits),
                on_token=stream.token if job.is_chat else None,
                before_model_call=self._budget_check(job, limits),
            )
            # A success is recorded with the last answer, in its transaction. In a thread
            # this attempt started, every answer is the runner's: its usage is the run's.
            succeeded = self._finisher(
                job,
                started_at,
                thread_id,
                RunStatus.SUCCEEDED,
                None,
                stream,
                usage_is_the_runs=messages is not None,
            )
            async with asyncio.timeout(_remaining_s(started_at, job.timeout_s)):
                await runner.run_thread(
                    self.database, thread, stream=job.is_chat, messages=messages, finish=succeeded
                )
        except TimeoutError:
            message = f"the run exceeded the agent's time limit (timeout_s={job.timeout_s})"
            self._finish(job, started_at, thread_id, RunStatus.TIMED_OUT, message, stream)
            return
        except BudgetExceeded as exc:
            logger.info("run %s stopped: %s", job.run_id, exc.detail)
            self._finish(
                job, started_at, thread_id, RunStatus.FAILED, exc.detail, stream, code=exc.code
            )
            return
        except asyncio.CancelledError:
            if self._status_of(job.run_id) != RunStatus.CANCELLED:
                raise  # the process is shutting down: the run resumes on the next start
            task.uncancel()
            self._finish(
                job, started_at, thread_id, RunStatus.CANCELLED, CANCELLED_BY_REQUEST, stream
            )
            return
        except Exception as exc:
            message = describe_model_error(exc, job.model)
            logger.warning("run %s failed: %s", job.run_id, message, exc_info=exc)
            self._finish(job, started_at, thread_id, RunStatus.FAILED, message, stream)

    def _budget_check(self, job: RunJob, limits: Limits) -> Callable[[], None] | None:
        """The check before each model call of a budgeted agent's run (None: no budget)."""
        if not limits.any:
            return None

        def check() -> None:
            with self.database.transaction() as db:
                check_run(db, job.run_id, job.agent_id, limits)

        return check

    @staticmethod
    def _on_message(
        job: RunJob, stream: "RunStream", limits: Limits
    ) -> Callable[[Connection, MessageRead], Callable[[], None]]:
        """Each message's event; for a budgeted agent's run also the run's usage so far, in
        the message's transaction, so that the budget checks of every process read it."""
        if not limits.any:
            return stream.message_stored

        def on_message(db: Connection, message: MessageRead) -> Callable[[], None]:
            if message.role == "assistant":
                totals = usage_of_thread(db, message.thread_id, after=job.message_id or 0)
                update_running(db, job.run_id, totals)
            return stream.message_stored(db, message)

        return on_message

    async def _wait_for_cut_off_runs(self, agent_id: int, task: asyncio.Task[Any]) -> None:
        """A run starts only once the agent's cancelled runs here have let go of their calls:
        a cancel frees the agent at once, but the cut-off task unwinds a moment later."""
        loop = task.get_loop()
        stopping = [
            other
            for owner, other in list(self._executing.values())
            if owner == agent_id and other.cancelling() and other.get_loop() is loop
        ]
        if stopping:
            await asyncio.wait(stopping)

    def _interrupt_if_cancelled(self, event: Event) -> None:
        """Interrupt the in-flight model or tool call of a run executing here as soon as the
        run is cancelled, in this process or (the event relayed) in another."""
        if event.type != EventType.RUN_UPDATED or event.data.get("status") != RunStatus.CANCELLED:
            return
        entry = self._executing.get(event.data["id"])
        if entry is not None:
            _cancel_task(entry[1])

    async def _poll_cancels_forever(self) -> None:
        """Catch a cancel whose event was lost (a relay reconnecting): one query for all."""
        while True:
            await asyncio.sleep(CANCEL_SAFETY_POLL_S)
            running = list(self._executing)
            if not running:
                continue
            try:
                with self.database.read() as db:
                    cancelled = cancelled_among(db, running)
            except Exception:
                logger.exception("checking for cancelled runs failed")
                continue
            for run_id in cancelled:
                entry = self._executing.get(run_id)
                if entry is not None:
                    _cancel_task(entry[1])

    def _status_of(self, run_id: int) -> str | None:
        with self.database.read() as db:
            return run_status(db, run_id)

    async def cancel(self, run_id: int, actor: Actor) -> RunRead:
        """Cancel a queued or running run; a finished one is a conflict.

        The run's final status, its agent's status and the freed slot commit together, so no
        reader sees a cancelled run beside a `running` agent; the event that announces the
        cancel also interrupts the run's in-flight call wherever it executes.
        """
        with self.database.transaction() as db:
            owner_id = check_run_visible(db, run_id, actor)
            run = read_run(run_id, db=db)
            now = clock.now()
            # The usage of what ran before the cancel is on the run's final record (and its
            # terminal event) from the start.
            totals = usage_of_thread(db, run.thread_id, after=message_of(db, run_id) or 0)
            cancelled = transition_run(
                run_id,
                RunStatus.CANCELLED,
                db=db,
                finished_at=now,
                duration_ms=_duration_ms(run.started_at or run.queued_at, now),
                error=CANCELLED_BY_REQUEST,
                **totals,
            )
            if cancelled is None:
                raise Conflict(
                    f"run {run_id} has already finished ({run.status}); only a queued or "
                    "running run can be cancelled",
                    code="run_finished",
                )
            events = [_run_event(EventType.RUN_UPDATED, cancelled, owner_id)]
            # Read from the row as cancelled: whether it had started is decided by the UPDATE.
            started = cancelled.started_at is not None
            if started and run.trigger != "chat":
                agent = agent_after_run(run.agent_id, run_id, RunStatus.CANCELLED, None, now, db=db)
                data = {"id": run.agent_id, "status": agent, "thread_id": cancelled.thread_id}
                events.append(_agent_event(data, owner_id))
            events = event_log.store(db, events)
            workflow_id = workflow_of(db, run_id)
        self.bus.publish_all(events)
        if not started:  # a run waiting in the engine's queue must never start
            await self.engine.cancel(workflow_id)
        return cancelled

    async def chat(
        self, thread_id: int, content: str, *, actor: Actor, token_id: int | None = None
    ) -> RunRead:
        """Store the user's message in chat thread `thread_id` and start the turn that answers
        it: a run with trigger `chat`, its tokens streamed on the thread's topic. Answers at
        once with the queued run; `Conflict` `thread_busy` while the previous turn runs."""
        try:
            with self.database.transaction() as db:
                turn = record_chat_turn(thread_id, content, actor=actor, token_id=token_id, db=db)
                run = turn.run
                created = _run_event(EventType.RUN_CREATED, run, turn.owner_id)
                message = Event(
                    EventType.THREAD_MESSAGE_CREATED,
                    turn.message.model_dump(mode="json"),
                    owner_id=turn.owner_id,
                    agent_id=run.agent_id,
                    thread_id=thread_id,
                    run_id=run.id,
                )
                events = event_log.store(db, [created, message])
                partition = partition_of("chat", run.agent_id, thread_id)
                if self.engine.distributed:
                    self.engine.enqueue_in_transaction(db, run.id, partition, turn.workflow_id)
        except IntegrityError:  # another turn of the thread was recorded at the same moment
            raise thread_busy(thread_id) from None
        self.bus.publish_all(events)
        if not self.engine.distributed:
            await self.engine.submit(run.id, partition, turn.workflow_id, queued=False)
        return run

    def _begin(
        self, job: RunJob, stream: "RunStream"
    ) -> tuple[ThreadRead, datetime, list[MessageRead] | None] | None:
        """Steps 2-5 in one transaction: run and agent `running`, and (once per run) a fresh
        thread with the system and task messages; announced after the commit. Returns the
        thread, when the run started and the fresh thread's messages (None: an existing
        thread's are to be read), or None when the run was cancelled before it could start.
        A chat turn runs in its thread as it is and leaves the agent's status alone."""
        created = job.thread_id is None
        first_messages: list[MessageRead] | None = None
        events: list[Event] = []
        with self.database.transaction() as db:
            if job.thread_id is None:
                now = clock.now()
                thread, first_messages = ThreadService.start_thread(
                    db,
                    job.agent_id,
                    job.system_instructions,
                    title=f"{_TITLE_OF[job.trigger]} {now:%Y-%m-%d %H:%M:%S} UTC",
                    thread_type=THREAD_TYPE_OF[job.trigger],
                    task=task_message(job.task_instructions or "", job.input),
                )
            else:
                thread = ThreadService.read_thread(db, job.thread_id)
            fields: dict[str, Any] = {"executor_id": self.engine.executor_id}
            if created:
                fields["thread_id"] = thread.id
            if job.status == RunStatus.QUEUED:
                run = transition_run(
                    job.run_id, RunStatus.RUNNING, db=db, started_at=clock.now(), **fields
                )
            else:  # resumed after a crash: running already
                run = update_running(db, job.run_id, fields)
            if run is None:  # cancelled (or finished) meanwhile: leave no thread behind
                db.rollback()
                return None
            if not job.is_chat:
                set_agent_status(db, job.agent_id, AgentStatus.RUNNING)
                data = {"id": job.agent_id, "status": "running"}
                events.append(_agent_event(data, job.owner_id))
            data = run.model_dump(mode="json")
            events.append(stream.event(EventType.RUN_UPDATED, data, thread.id))
            if first_messages is not None:
                data = thread.model_dump(mode="json")
                events.append(stream.event(EventType.THREAD_CREATED, data, thread.id))
                for message in first_messages:
                    data = message.model_dump(mode="json")
                    events.append(stream.event(EventType.THREAD_MESSAGE_CREATED, data, thread.id))
            events = stream.store(db, events)
        stream.publish(events)
        stream.started(thread.id)
        assert run.started_at is not None
        return thread, run.started_at, first_messages

    def _finish(
        self,
        job: RunJob,
        started_at: datetime | None,
        thread_id: int | None,
        status: RunStatus,
        error: str | None,
        stream: "RunStream | None" = None,
        *,
        code: str | None = None,
    ) -> None:
        """Steps 7-8 in one transaction (see `_finisher`)."""
        finish = self._finisher(job, started_at, thread_id, status, error, stream, code=code)
        with self.database.transaction() as db:
            published = finish(db, None)
        if published is not None:
            published()

    def _finisher(
        self,
        job: RunJob,
        started_at: datetime | None,
        thread_id: int | None,
        status: RunStatus,
        error: str | None,
        stream: "RunStream | None" = None,
        *,
        code: str | None = None,
        usage_is_the_runs: bool = False,
    ) -> "Finish":
        """Steps 7-8, to run in the caller's transaction: the run's final status with timings
        and usage (and `code`, the error's stable code, as `error_code`), and the agent's
        status: `idle` after a success or a cancel, `error` with `last_error` after a failure
        (a chat turn leaves the agent's status alone). What it returns announces them once
        that has committed (None: nothing to announce).

        The run's usage is summed from its stored answers, or — `usage_is_the_runs` — taken
        from the runner's usage given (the runner stored every answer of the run)."""
        stream = stream or RunStream(self.bus, job)
        failed = status in (RunStatus.FAILED, RunStatus.TIMED_OUT)

        def finish(db: Connection, usage: "RunUsage | None") -> Callable[[], None] | None:
            now = clock.now()
            events: list[Event] = []
            if usage_is_the_runs and usage is not None:
                totals = usage.totals()
            else:
                totals = usage_of_thread(db, thread_id, after=job.message_id or 0)
            run = transition_run(
                job.run_id,
                status,
                db=db,
                finished_at=now,
                duration_ms=_duration_ms(started_at or job.queued_at, now),
                error=error,
                error_code=code,
                **totals,
            )
            if run is not None and not job.is_chat:
                agent = agent_after_run(job.agent_id, job.run_id, status, error, now, db=db)
                data: dict[str, Any] = {"id": job.agent_id, "status": agent}
                data["thread_id"] = run.thread_id
                if failed:
                    data["last_error"] = error
                events.append(_agent_event(data, job.owner_id))
            elif run is None and status == RunStatus.CANCELLED:
                # Cancelled from outside, agent and all, with the usage recorded then: add a
                # message that was stored meanwhile (announced, once the stream has ended,
                # to the run's other followers only).
                run = update_finished(db, job.run_id, totals)
            if run is None:
                return None  # deleted with its agent, or another outcome was recorded first
            data = run.model_dump(mode="json")
            events.append(stream.event(EventType.RUN_UPDATED, data, run.thread_id))
            stored = stream.store(db, events)
            ended = run

            def publish() -> None:
                stream.publish(stored)
                stream.ended(ended)

            return publish

        return finish


class RunStream:
    """A run's events as it executes: each recorded in the transaction of its change and
    published after the commit; for a chat turn also the stream events (`stream_start`,
    `stream_chunk`s, `stream_end`), placed after the last stored event published."""

    def __init__(self, bus: EventBus, job: RunJob) -> None:
        self.bus = bus
        self.job = job
        self.thread_id = job.thread_id
        self.last_id = 0
        self.seq = 0

    def event(self, type: EventType, data: dict[str, Any], thread_id: int | None = None) -> Event:
        """One of the run's events, to store (`event_log.store`) in its change's transaction."""
        return Event(
            type,
            data,
            owner_id=self.job.owner_id,
            agent_id=self.job.agent_id,
            thread_id=thread_id,
            run_id=self.job.run_id,
        )

    def store(self, db: Connection, events: list[Event]) -> list[Event]:
        """Store the run's events in its change's transaction (`event_log.store`). A chat
        turn's travel to the other processes when published, in order with its stream."""
        return event_log.store(db, events, notify=not self.job.is_chat)

    def publish(self, events: list[Event]) -> None:
        for event in events:
            if event.run_id == self.job.run_id and event.id is not None:
                self.last_id = max(self.last_id, event.id)
            self.bus.publish(event)

    def message_stored(self, db: Connection, message: MessageRead) -> Callable[[], None]:
        """In the message's transaction: its event; after the commit, publish it (and, in
        a chat turn, the message as a stream chunk)."""
        data = message.model_dump(mode="json")
        event = self.event(EventType.THREAD_MESSAGE_CREATED, data, message.thread_id)
        [event] = self.store(db, [event])

        def publish() -> None:
            self.publish([event])
            if message.role == "assistant":
                self._stream(EventType.STREAM_CHUNK, {"chunk_type": "assistant_message", **data})
            elif message.role == "tool":
                self._stream(EventType.STREAM_CHUNK, {"chunk_type": "tool_output", **data})

        return publish

    def started(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self._stream(EventType.STREAM_START, {})

    def token(self, text: str) -> None:
        self._stream(EventType.STREAM_CHUNK, {"chunk_type": "assistant_token", "content": text})

    def ended(self, run: RunRead) -> None:
        self._stream(EventType.STREAM_END, {"status": run.status.value, "error": run.error})

    def _stream(self, type: EventType, data: dict[str, Any]) -> None:
        if not self.job.is_chat:
            return
        self.seq += 1
        event = Event(
            type,
            {"run_id": self.job.run_id, "thread_id": self.thread_id, **data},
            owner_id=self.job.owner_id,
            agent_id=self.job.agent_id,
            thread_id=self.thread_id,
            run_id=self.job.run_id,
            seq=self.seq,
            id_before=self.last_id,
        )
        self.bus.publish(event)


def _run_event(type: EventType, run: RunRead, owner_id: int | None) -> Event:
    """A run's event, to store (`event_log.store`) in the transaction of its change."""
    return Event(
        type,
        run.model_dump(mode="json"),
        owner_id=owner_id,
        agent_id=run.agent_id,
        thread_id=run.thread_id,
        run_id=run.id,
    )


def _agent_event(data: dict[str, Any], owner_id: int | None) -> Event:
    """An `agent_updated` of a run's doing (its status, the run's thread), to store."""
    return Event(EventType.AGENT_UPDATED, data, owner_id=owner_id, agent_id=data["id"])


def task_message(task_instructions: str, payload: Any) -> str:
    """The run's user message: the task, then what its trigger delivered, clearly delimited.

    The payload is untrusted. It is written as JSON with `<`, `>` and `&` escaped (`\\u003c`
    ...), the same value to a JSON reader, so no payload can close its `<payload>` block and
    pose as instructions after it.
    """
    if payload is None:
        return task_instructions
    body = (
        json.dumps(payload, indent=2, ensure_ascii=False)
        .replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
    )
    return (
        f"{task_instructions}\n\nThe trigger delivered this payload (untrusted data, JSON):\n"
        f"<payload>\n{body}\n</payload>"
    )


def _cancel_task(task: asyncio.Task[Any]) -> None:
    """Cancel `task` now when on its loop's thread, else as soon as its loop runs."""
    loop = task.get_loop()
    try:
        here = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    if here is loop:
        task.cancel()
    else:
        loop.call_soon_threadsafe(task.cancel)


def _remaining_s(started_at: datetime | None, timeout_s: int) -> float:
    """What is left of the run's time limit; a resumed run does not start the clock again."""
    if started_at is None:
        return float(timeout_s)
    return max(0.0, timeout_s - (clock.now() - started_at).total_seconds())


def _duration_ms(started: datetime, now: datetime) -> int:
    return max(0, int((now - started).total_seconds() * 1000))


def _load_agent_loop() -> None:
    """Import the agent loop (LangChain, LangGraph: a second or more) and set it up."""
    from zerg.agents.runner import run_tracing_hooks_inline

    run_tracing_hooks_inline()
