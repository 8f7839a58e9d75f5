"""Task runs: `execute_agent_task`, the one path every trigger's run takes (DESIGN §1).

A trigger records a queued run and hands it to the run engine; the engine calls
`execute_agent_task`, which is idempotent: after a crash it is simply called again and resumes
the run from its thread.
"""

import asyncio
import json
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zerg import clock
from zerg.agents.models import describe_model_error
from zerg.agents.runner import AgentRunner, run_tracing_hooks_inline
from zerg.agents.tools import HttpGetPolicy
from zerg.db import Database
from zerg.engine import EngineMode, RunEngine
from zerg.errors import Conflict, InvalidInput
from zerg.events import EventBus, EventType
from zerg.models import Agent, Message, Run, Thread
from zerg.schemas.agents import AgentStatus
from zerg.schemas.runs import RunRead, RunStatus, RunTrigger
from zerg.schemas.threads import MessageRead, ThreadRead, ThreadType
from zerg.services import notifications
from zerg.services.agents import get_agent
from zerg.services.runs import FINAL_STATUSES, get_run, transition_run
from zerg.services.threads import ThreadService
from zerg.settings import Settings

logger = logging.getLogger(__name__)

CANCELLED_BY_REQUEST = "cancelled on request"
# How often a running run checks whether it was cancelled (possibly by another process).
CANCEL_POLL_S = 0.25
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


def record_run(
    agent_id: int,
    *,
    trigger: RunTrigger,
    idempotency_key: str | None,
    session: Session,
    input: Any = None,
) -> tuple[Run, bool]:
    """Step 1: check the agent can run a task, then record a queued run (the caller commits).

    Returns the run and whether it is new; a known idempotency key returns the earlier run.
    """
    agent = get_agent(agent_id, session=session)
    if not (agent.task_instructions or "").strip():
        raise InvalidInput(
            f"agent {agent_id} has no task_instructions; set them before starting a task run",
            code="no_task_instructions",
        )
    if idempotency_key is not None:
        existing = session.scalar(select(Run).where(Run.idempotency_key == idempotency_key))
        if existing is not None:
            return existing, False
    slot = None
    if agent.concurrency == "reject":
        busy = session.scalar(select(Run).where(Run.slot_agent_id == agent.id))
        if busy is not None:
            raise Conflict(
                f"agent {agent.id} is busy with run {busy.id} ({busy.status}); wait for it to "
                "finish, cancel it, or set the agent's concurrency to 'queue'",
                code="agent_busy",
            )
        slot = agent.id
    run = Run(
        slot_agent_id=slot,
        input=input,
        agent_id=agent.id,
        trigger=trigger,
        status=RunStatus.QUEUED,
        idempotency_key=idempotency_key,
        queued_at=clock.now(),
    )
    session.add(run)
    session.flush()
    return run, True


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
        run_tracing_hooks_inline()

    # -- lifecycle -------------------------------------------------------------------------

    async def launch(self) -> None:
        """Start the engine and make sure every unfinished run has its workflow.

        DBOS resumes the workflows it knows; a run recorded just before a crash, whose
        workflow was never started, is submitted here (submitting twice is harmless).
        An API replica leaves that to the workers.
        """
        await asyncio.to_thread(self.engine.launch)
        if self.engine.mode == "api":
            return
        with self.database.session() as session:
            open_runs = session.execute(
                select(Run.id, Run.agent_id, Agent.concurrency)
                .join(Agent, Agent.id == Run.agent_id)
                .where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
                .order_by(Run.id)
            ).all()
        for run_id, agent_id, concurrency in open_runs:
            await self.engine.submit(run_id, agent_id, queued=concurrency == "queue")
        if self.engine.mode == "embedded":
            self._release_stuck_agents()

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
        self.engine.shutdown()

    # -- triggers --------------------------------------------------------------------------

    async def trigger(
        self,
        agent_id: int,
        *,
        trigger: RunTrigger,
        idempotency_key: str | None = None,
        input: Any = None,
    ) -> RunRead:
        """Record a run durably, start it, and answer at once with the queued run.

        `input` (e.g. a webhook's payload) is shown to the agent after its task instructions.
        """
        # An agent's queued runs start by run id, but only among those already enqueued: so
        # in embedded mode they are enqueued in the order they were recorded, one at a time.
        # (No await in the critical section otherwise: a direct start is not held up.)
        async with self._recording_lock():
            snapshot, created, queued = self._record(agent_id, trigger, idempotency_key, input)
            if created:
                self.bus.publish(EventType.RUN_CREATED, snapshot.model_dump(mode="json"))
            if created and queued and not self.engine.distributed:
                await self.engine.submit(snapshot.id, snapshot.agent_id, queued=True)
        if created and not queued and not self.engine.distributed:
            await self.engine.submit(snapshot.id, snapshot.agent_id, queued=False)
        return snapshot

    def _record(
        self, agent_id: int, trigger: RunTrigger, idempotency_key: str | None, input: Any
    ) -> tuple[RunRead, bool, bool]:
        """Record the run (in distributed mode, with its place in the workers' queue)."""
        with self.database.session() as session:
            for attempt in (1, 2):
                try:
                    run, created = record_run(
                        agent_id,
                        trigger=trigger,
                        idempotency_key=idempotency_key,
                        input=input,
                        session=session,
                    )
                    if created and self.engine.distributed:
                        # The run and its place in the queue commit together.
                        self.engine.enqueue_in_transaction(session, run.id, run.agent_id)
                    session.commit()
                    break
                except IntegrityError:  # the same key raced in from another request
                    session.rollback()
                    if attempt == 2:
                        raise
            return RunRead.model_validate(run), created, run.slot_agent_id is None

    def _recording_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:  # an asyncio.Lock belongs to one event loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    async def wait(self, run_id: int, timeout_s: float) -> RunRead:
        """The run once it has finished, or as it stands after `timeout_s`."""
        subscription = self.bus.subscribe(
            lambda e: (
                e.type == EventType.RUN_UPDATED
                and e.data["id"] == run_id
                and e.data["status"] in FINAL_STATUSES
            )
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
        with self.database.session() as session:
            return RunRead.model_validate(get_run(run_id, session=session))

    # -- execution -------------------------------------------------------------------------

    async def execute_agent_task(self, run_id: int) -> None:
        """Steps 2-8 of a task run. Safe to call again for the same run: it resumes."""
        with self.database.session() as session:
            run = session.get(Run, run_id)
            agent = session.get(Agent, run.agent_id) if run is not None else None
            if run is None or agent is None:
                return  # deleted with its agent
            wants_notice = agent.notify_url is not None
            if run.status not in FINAL_STATUSES:  # else finished already: only the notice
                await self._execute(session, run, agent)
        if wants_notice:
            # Also when re-entered after a crash: starting the notice twice is harmless.
            await self.engine.notify(run_id)

    async def deliver_notification(self, run_id: int) -> None:
        """One attempt to tell the agent's notify_url that run `run_id` finished."""
        await notifications.deliver(self.database, run_id, self.http_policy)

    async def _execute(self, session: Session, run: Run, agent: Agent) -> None:
        run_id, timeout_s = run.id, agent.timeout_s
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.create_task(self._watch_for_cancel(run_id, task))
        try:
            thread = self._begin(session, run, agent)
            if thread is None:
                return
            runner = AgentRunner(
                agent,
                settings=self.settings,
                http_policy=self.http_policy,
                on_message=self._publish_message,
            )
            async with asyncio.timeout(_remaining_s(run, timeout_s)):
                await runner.run_thread(session, thread)
        except TimeoutError:
            session.rollback()
            message = f"the run exceeded the agent's time limit (timeout_s={timeout_s})"
            self._finish(session, run_id, RunStatus.TIMED_OUT, message)
            return
        except asyncio.CancelledError:
            session.rollback()
            if self._status_of(session, run_id) != RunStatus.CANCELLED:
                raise  # the process is shutting down: the run resumes on the next start
            task.uncancel()
            self._finish(session, run_id, RunStatus.CANCELLED, CANCELLED_BY_REQUEST)
            return
        except Exception as exc:
            session.rollback()
            message = describe_model_error(exc, agent.model)
            logger.warning("run %s failed: %s", run_id, message, exc_info=exc)
            self._finish(session, run_id, RunStatus.FAILED, message)
            return
        finally:
            watcher.cancel()
        self._finish(session, run_id, RunStatus.SUCCEEDED, None)

    async def _watch_for_cancel(self, run_id: int, task: asyncio.Task[Any]) -> None:
        """Interrupt the run's in-flight model or tool call once the run is cancelled,
        whichever process cancelled it."""
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            with self.database.session() as session:
                if self._status_of(session, run_id) == RunStatus.CANCELLED:
                    task.cancel()
                    return

    @staticmethod
    def _status_of(session: Session, run_id: int) -> str | None:
        status = session.scalar(select(Run.status).where(Run.id == run_id))
        session.commit()
        return status

    async def cancel(self, run_id: int) -> RunRead:
        """Cancel a queued or running run; a finished one is a conflict."""
        with self.database.session() as session:
            run = get_run(run_id, session=session)
            was_queued = run.status == RunStatus.QUEUED
            now = clock.now()
            moved = transition_run(
                run_id,
                RunStatus.CANCELLED,
                session=session,
                finished_at=now,
                duration_ms=_duration_ms(run, now),
                error=CANCELLED_BY_REQUEST,
            )
            if not moved:
                raise Conflict(
                    f"run {run_id} has already finished ({run.status}); only a queued or "
                    "running run can be cancelled",
                    code="run_finished",
                )
            session.commit()
            snapshot = RunRead.model_validate(run)
        self._publish_run_read(snapshot)
        if was_queued:  # a run waiting in the engine's queue must never start
            await self.engine.cancel(run_id)
        return snapshot

    def _begin(self, session: Session, run: Run, agent: Agent) -> Thread | None:
        """Steps 2-5 in one commit: run and agent `running`, and (once per run) a fresh thread
        with the system and task messages; announced after the commit. None when the run
        was cancelled before it could start."""
        if run.status == RunStatus.QUEUED:
            transition_run(run.id, RunStatus.RUNNING, session=session, started_at=clock.now())
        if run.status != RunStatus.RUNNING:
            session.commit()
            return None
        agent.status = AgentStatus.RUNNING
        run.executor_id = self.engine.executor_id
        if run.thread_id is None:
            now = clock.now()
            thread = ThreadService.create_thread_with_system_message(
                session,
                agent,
                title=f"{_TITLE_OF[run.trigger]} {now:%Y-%m-%d %H:%M:%S} UTC",
                thread_type=THREAD_TYPE_OF[run.trigger],
            )
            ThreadService.add_message(
                session,
                thread,
                role="user",
                content=task_message(agent.task_instructions or "", run.input),
                processed=False,
            )
            run.thread_id = thread.id
            created = True
        else:
            thread = ThreadService.get_thread(session, run.thread_id)
            created = False
        # Commit before the model is awaited: no pooled connection is held across it.
        session.commit()
        self.bus.publish(EventType.AGENT_UPDATED, {"id": agent.id, "status": agent.status})
        self._publish_run(run)
        if created:
            self.bus.publish(
                EventType.THREAD_CREATED, ThreadRead.model_validate(thread).model_dump(mode="json")
            )
        return thread

    def _finish(self, session: Session, run_id: int, status: RunStatus, error: str | None) -> None:
        """Steps 7-8: the run's final status with timings and usage, and the agent's status:
        `idle` after a success or a cancel, `error` with `last_error` after a failure."""
        run = get_run(run_id, session=session)
        now = clock.now()
        if run.status not in FINAL_STATUSES:
            totals = _usage_of_thread(session, run.thread_id)
            transition_run(
                run_id,
                status,
                session=session,
                finished_at=now,
                duration_ms=_duration_ms(run, now),
                error=error,
                **totals,
            )
        elif status == RunStatus.CANCELLED:
            # Cancelled from outside: record the usage of what ran before the interruption.
            session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(**_usage_of_thread(session, run.thread_id))
            )
        if run.status != status:
            session.commit()
            self._publish_run(run)
            return  # a late writer: another outcome was recorded first
        agent = session.get(Agent, run.agent_id)
        if agent is None:
            session.commit()
            return
        failed = status in (RunStatus.FAILED, RunStatus.TIMED_OUT)
        busy = session.scalar(
            select(Run.id)
            .where(Run.agent_id == agent.id, Run.id != run_id, Run.status == RunStatus.RUNNING)
            .limit(1)
        )
        agent.status = (
            AgentStatus.RUNNING if busy else AgentStatus.ERROR if failed else AgentStatus.IDLE
        )
        agent.last_run_at = now
        if status != RunStatus.CANCELLED:
            agent.last_error = error if failed else None
        session.commit()
        payload: dict[str, Any] = {
            "id": agent.id,
            "status": agent.status,
            "thread_id": run.thread_id,
        }
        if failed:
            payload["last_error"] = error
        self.bus.publish(EventType.AGENT_UPDATED, payload)
        self._publish_run(run)

    def _publish_run(self, run: Run) -> None:
        self._publish_run_read(RunRead.model_validate(run))

    def _publish_run_read(self, run: RunRead) -> None:
        self.bus.publish(EventType.RUN_UPDATED, run.model_dump(mode="json"))

    def _publish_message(self, message: Message) -> None:
        self.bus.publish(
            EventType.THREAD_MESSAGE_CREATED,
            MessageRead.model_validate(message).model_dump(mode="json"),
        )


def task_message(task_instructions: str, payload: Any) -> str:
    """The run's user message: the task, then what its trigger delivered, clearly delimited."""
    if payload is None:
        return task_instructions
    body = payload if isinstance(payload, str) else json.dumps(payload, indent=2)
    return (
        f"{task_instructions}\n\nThe trigger delivered this payload:\n<payload>\n{body}\n</payload>"
    )


def _remaining_s(run: Run, timeout_s: int) -> float:
    """What is left of the run's time limit; a resumed run does not start the clock again."""
    if run.started_at is None:
        return float(timeout_s)
    return max(0.0, timeout_s - (clock.now() - run.started_at).total_seconds())


def _duration_ms(run: Run, now: Any) -> int:
    started = run.started_at or run.queued_at
    return max(0, int((now - started).total_seconds() * 1000))


def _usage_of_thread(session: Session, thread_id: int | None) -> dict[str, Any]:
    """Token and cost totals from the thread's stored assistant messages (right after resumes)."""
    totals: dict[str, Any] = {
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
    }
    if thread_id is None:
        totals["cost_usd"] = None
        return totals
    metas = session.scalars(
        select(Message.meta).where(Message.thread_id == thread_id, Message.role == "assistant")
    )
    for meta in metas:
        totals["input_tokens"] += int(meta.get("input_tokens", 0))
        totals["output_tokens"] += int(meta.get("output_tokens", 0))
        cost = meta.get("cost_usd")
        totals["cost_usd"] = (
            None if cost is None or totals["cost_usd"] is None else (totals["cost_usd"] + cost)
        )
    totals["total_tokens"] = totals["input_tokens"] + totals["output_tokens"]
    return totals
