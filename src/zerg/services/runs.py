"""Runs: listing and reading run records, and the run state machine."""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.dml import ReturningUpdate

from zerg.errors import NotFound
from zerg.models import Agent, Run, runs_table
from zerg.schemas.runs import RunRead, RunStatus, RunTrigger
from zerg.services.ownership import scoped
from zerg.services.pagination import PageResult, paginate
from zerg.services.users import Actor


def get_run(run_id: int, *, actor: Actor, session: Session) -> Run:
    """Run `run_id` if the actor may see its agent; `NotFound` (the same as for a missing one)
    otherwise."""
    run = session.scalar(scoped(select(Run).where(Run.id == run_id), actor, Run.agent_id))
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


def list_runs(
    *,
    actor: Actor,
    session: Session,
    agent_id: int | None = None,
    owner_id: int | None = None,
    status: RunStatus | None = None,
    trigger: RunTrigger | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    after: str | None,
) -> PageResult[Run]:
    """The runs the actor may see, newest first; `owner_id` keeps those of that user's agents,
    `since`/`until` bound the time the run was queued."""
    stmt = scoped(select(Run), actor, Run.agent_id)
    if agent_id is not None:
        stmt = stmt.where(Run.agent_id == agent_id)
    if owner_id is not None:
        stmt = stmt.where(Run.agent_id.in_(select(Agent.id).where(Agent.owner_id == owner_id)))
    if status is not None:
        stmt = stmt.where(Run.status == status)
    if trigger is not None:
        stmt = stmt.where(Run.trigger == trigger)
    if since is not None:
        stmt = stmt.where(Run.queued_at >= since)
    if until is not None:
        stmt = stmt.where(Run.queued_at < until)
    return paginate(session, stmt, Run.id, limit=limit, after=after, descending=True)


def latest_runs(
    agent_ids: list[int], *, session: Session, open_only: bool = False
) -> dict[int, Run]:
    """Each agent's newest run (`open_only`: newest queued or running one), by agent id; the
    caller passes agents the actor may see.

    One lookup per agent in the index on (agent_id, id), however long the agent's history:
    a GROUP BY would read every run of each agent."""
    older = aliased(Run)
    newest = select(func.max(older.id)).where(older.agent_id == Agent.id)
    if open_only:
        newest = newest.where(older.status.in_((RunStatus.QUEUED, RunStatus.RUNNING)))
    per_agent = select(newest.correlate(Agent).scalar_subquery()).where(Agent.id.in_(agent_ids))
    runs = session.scalars(select(Run).where(Run.id.in_(per_agent)))
    return {run.agent_id: run for run in runs}


def runs_of_thread(thread_id: int, *, limit: int, session: Session) -> list[Run]:
    """A thread's latest `limit` runs (a chat has one per turn), oldest first; the caller
    checked that the actor may see the thread."""
    stmt = select(Run).where(Run.thread_id == thread_id).order_by(Run.id.desc()).limit(limit)
    return list(reversed(session.scalars(stmt).all()))


FINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
)
# The run state machine: which statuses each status may move to. Final states move nowhere.
ALLOWED_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
    ),
    RunStatus.RUNNING: frozenset(
        {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
    ),
}


# The run path's statements are built once: building one per call cost more than running it.
_READ_RUN = select(runs_table).where(runs_table.c.id == bindparam("run_id"))


def read_run(run_id: int, *, db: Connection) -> RunRead:
    """One run as stored, through Core (the run path's reads)."""
    row = db.execute(_READ_RUN, {"run_id": run_id}).one_or_none()
    if row is None:
        raise NotFound(f"run {run_id} does not exist")
    return RunRead.model_validate(row)


def _transition_statement(to: RunStatus) -> ReturningUpdate[Any]:
    sources = [source for source, targets in ALLOWED_TRANSITIONS.items() if to in targets]
    return (
        update(runs_table)
        # Equalities rather than IN: no list parameter to expand on every execution.
        .where(
            runs_table.c.id == bindparam("run_id"),
            or_(*(runs_table.c.status == source for source in sources)),
        )
        .returning(*runs_table.c)
    )


# The columns set are those given at execution.
_TRANSITIONS: dict[RunStatus, ReturningUpdate[Any]] = {
    to: _transition_statement(to) for to in RunStatus if to != RunStatus.QUEUED
}


def transition_run(run_id: int, to: RunStatus, *, db: Connection, **fields: Any) -> RunRead | None:
    """Move a run to `to` if the table allows it from its current status: the run as it now
    stands, or None if it was not moved.

    Compare-and-set in one UPDATE: a late writer (a retried step, a cancel racing a finish)
    can never overwrite a final status.
    """
    if to in FINAL_STATUSES:
        fields["slot_agent_id"] = None  # a finished run frees its agent
    row = db.execute(_TRANSITIONS[to], {**fields, "status": to, "run_id": run_id}).one_or_none()
    return None if row is None else RunRead.model_validate(row)
