"""Runs: the read side (listing and fetching run records)."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

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
