"""Runs: the read side (listing and fetching run records)."""

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from zerg.errors import NotFound
from zerg.models import Run
from zerg.schemas.runs import RunStatus, RunTrigger
from zerg.services.pagination import PageResult, paginate


def get_run(run_id: int, *, session: Session) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


def list_runs(
    *,
    session: Session,
    agent_id: int | None = None,
    status: RunStatus | None = None,
    trigger: RunTrigger | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    after: str | None,
) -> PageResult[Run]:
    """Runs, newest first; `since`/`until` bound the time the run was queued."""
    stmt = select(Run)
    if agent_id is not None:
        stmt = stmt.where(Run.agent_id == agent_id)
    if status is not None:
        stmt = stmt.where(Run.status == status)
    if trigger is not None:
        stmt = stmt.where(Run.trigger == trigger)
    if since is not None:
        stmt = stmt.where(Run.queued_at >= since)
    if until is not None:
        stmt = stmt.where(Run.queued_at < until)
    return paginate(session, stmt, Run.id, limit=limit, after=after, descending=True)


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


def transition_run(run_id: int, to: RunStatus, *, session: Session, **fields: Any) -> bool:
    """Move a run to `to` if the table allows it from its current status; False if not.

    Compare-and-set in one UPDATE: a late writer (a retried step, a cancel racing a finish)
    can never overwrite a final status.
    """
    sources = [source for source, targets in ALLOWED_TRANSITIONS.items() if to in targets]
    if to in FINAL_STATUSES:
        fields["slot_agent_id"] = None  # a finished run frees its agent
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(sources))
        .values(status=to, **fields)
        .execution_options(synchronize_session=False)
    )
    moved = bool(getattr(result, "rowcount", 0) == 1)
    run = session.identity_map.get(identity_key(Run, run_id))
    if run is not None:
        if moved:  # the row now holds exactly these values: no need to read it back
            for name, value in {"status": to, **fields}.items():
                set_committed_value(run, name, value)
        else:
            session.expire(run)
    return moved
