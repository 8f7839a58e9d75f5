"""Task runs: `execute_agent_task`, the one path every trigger's run takes (DESIGN §1).

A trigger records a queued run and hands it to the run engine; the engine calls
`execute_agent_task`, which is idempotent: after a crash it is simply called again and resumes
the run from its thread.
"""

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zerg import clock
from zerg.agents.models import describe_model_error
from zerg.agents.runner import AgentRunner
from zerg.agents.tools import HttpGetPolicy
from zerg.db import Database
from zerg.engine import RunEngine
from zerg.errors import InvalidInput
from zerg.events import EventBus, EventType
from zerg.models import Agent, Message, Run, Thread
from zerg.schemas.agents import AgentStatus
from zerg.schemas.runs import RunRead, RunStatus, RunTrigger
from zerg.schemas.threads import MessageRead, ThreadRead, ThreadType
from zerg.services.agents import get_agent
from zerg.services.runs import FINAL_STATUSES, get_run, transition_run
from zerg.services.threads import ThreadService
from zerg.settings import Settings

logger = logging.getLogger(__name__)

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
    agent_id: int, *, trigger: RunTrigger, idempotency_key: str | None, session: Session
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
    run = Run(
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
    ) -> None:
        self.settings = settings
        self.database = database
        self.bus = bus
        self.http_policy = http_policy
        self.engine = RunEngine(settings, self.execute_agent_task)

    # -- lifecycle -------------------------------------------------------------------------

    async def launch(self) -> None:
        """Start the engine and make sure every unfinished run has its workflow.

        DBOS resumes the workflows it knows; a run recorded just before a crash, whose
        workflow was never started, is submitted here (submitting twice is harmless).
        """
        await asyncio.to_thread(self.engine.launch)
        with self.database.session() as session:
            open_runs = list(
                session.scalars(
                    select(Run.id).where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
                )
            )
        for run_id in open_runs:
            await self.engine.submit(run_id)

    def shutdown(self) -> None:
        self.engine.shutdown()

    # -- triggers --------------------------------------------------------------------------

    async def trigger(
        self, agent_id: int, *, trigger: RunTrigger, idempotency_key: str | None = None
    ) -> RunRead:
        """Record a run durably, start it, and answer at once with the queued run."""
        with self.database.session() as session:
            try:
                run, created = record_run(
                    agent_id, trigger=trigger, idempotency_key=idempotency_key, session=session
                )
                session.commit()
            except IntegrityError:  # the same key raced in from another request
                session.rollback()
                run, created = record_run(
                    agent_id, trigger=trigger, idempotency_key=idempotency_key, session=session
                )
            snapshot = RunRead.model_validate(run)
        if created:
            self.bus.publish(EventType.RUN_CREATED, snapshot.model_dump(mode="json"))
            await self.engine.submit(snapshot.id)
        return snapshot

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
            current = self._read_run(run_id)
            if current.status not in FINAL_STATUSES:
                try:
                    async with asyncio.timeout(timeout_s):
                        await subscription.get()
                except TimeoutError:
                    pass
                current = self._read_run(run_id)
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
            if run is None or run.status in FINAL_STATUSES:
                return  # finished already, or deleted with its agent
            agent = session.get(Agent, run.agent_id)
            if agent is None:
                return
            try:
                thread = self._begin(session, run, agent)
                runner = AgentRunner(
                    agent,
                    settings=self.settings,
                    http_policy=self.http_policy,
                    on_message=self._publish_message,
                )
                await runner.run_thread(session, thread)
            except Exception as exc:
                session.rollback()
                self._fail(session, run_id, describe_model_error(exc, agent.model), exc)
                return
            self._succeed(session, run_id)

    def _begin(self, session: Session, run: Run, agent: Agent) -> Thread:
        """Steps 2-5 in one commit: run and agent `running`, and (once per run) a fresh thread
        with the system and task messages; announced after the commit."""
        if run.status == RunStatus.QUEUED:
            transition_run(run.id, RunStatus.RUNNING, session=session, started_at=clock.now())
        agent.status = AgentStatus.RUNNING
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
                content=agent.task_instructions or "",
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

    def _succeed(self, session: Session, run_id: int) -> None:
        """Step 7: agent `idle`, run `succeeded` with its timings and usage."""
        run = get_run(run_id, session=session)
        now = clock.now()
        totals = _usage_of_thread(session, run.thread_id)
        moved = transition_run(
            run_id,
            RunStatus.SUCCEEDED,
            session=session,
            finished_at=now,
            duration_ms=_duration_ms(run, now),
            **totals,
        )
        agent = session.get(Agent, run.agent_id)
        if agent is not None and moved:
            agent.status = AgentStatus.IDLE
            agent.last_run_at = now
            agent.last_error = None
        session.commit()
        if agent is not None and moved:
            self.bus.publish(
                EventType.AGENT_UPDATED,
                {"id": agent.id, "status": agent.status, "thread_id": run.thread_id},
            )
        self._publish_run(run)

    def _fail(self, session: Session, run_id: int, message: str, exc: Exception) -> None:
        """Step 8: agent `error` with `last_error`, run `failed` with the error."""
        logger.warning("run %s failed: %s", run_id, message, exc_info=exc)
        run = get_run(run_id, session=session)
        now = clock.now()
        totals = _usage_of_thread(session, run.thread_id)
        moved = transition_run(
            run_id,
            RunStatus.FAILED,
            session=session,
            finished_at=now,
            duration_ms=_duration_ms(run, now),
            error=message,
            **totals,
        )
        agent = session.get(Agent, run.agent_id)
        if agent is not None and moved:
            agent.status = AgentStatus.ERROR
            agent.last_run_at = now
            agent.last_error = message
        session.commit()
        if agent is not None and moved:
            self.bus.publish(
                EventType.AGENT_UPDATED,
                {
                    "id": agent.id,
                    "status": agent.status,
                    "thread_id": run.thread_id,
                    "last_error": message,
                },
            )
        self._publish_run(run)

    def _publish_run(self, run: Run) -> None:
        self.bus.publish(EventType.RUN_UPDATED, RunRead.model_validate(run).model_dump(mode="json"))

    def _publish_message(self, message: Message) -> None:
        self.bus.publish(
            EventType.THREAD_MESSAGE_CREATED,
            MessageRead.model_validate(message).model_dump(mode="json"),
        )


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
