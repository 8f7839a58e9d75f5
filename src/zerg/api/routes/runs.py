"""/api/runs"""

from typing import Annotated

from fastapi import APIRouter, Query

from zerg.api.deps import DEFAULT_PAGE_LIMIT, ActorDep, After, Limit, SessionDep, TaskRunsDep
from zerg.schemas.common import EARLIEST_UTC, LATEST_UTC, Id, Page, UtcDatetime
from zerg.schemas.runs import RunRead, RunStatus, RunTrigger
from zerg.services import runs as service

router = APIRouter(prefix="/runs", tags=["runs"])
_RANGE = f"ISO 8601 with a UTC offset, between {EARLIEST_UTC} and {LATEST_UTC} once in UTC"
Since = Annotated[UtcDatetime | None, Query(description=f"Queued at or after ({_RANGE}).")]
Until = Annotated[UtcDatetime | None, Query(description=f"Queued before ({_RANGE}).")]


@router.get("")
def list_runs(
    session: SessionDep,
    actor: ActorDep,
    agent_id: Id | None = None,
    owner_id: Annotated[Id | None, Query(description="Only runs of this user's agents.")] = None,
    status: RunStatus | None = None,
    trigger: RunTrigger | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_PAGE_LIMIT,
    after: After = None,
) -> Page[RunRead]:
    """List the runs you may see, newest first; `since`/`until` (ISO 8601 with offset) bound
    the queue time."""
    page = service.list_runs(
        actor=actor,
        session=session,
        agent_id=agent_id,
        owner_id=owner_id,
        status=status,
        trigger=trigger,
        since=since,
        until=until,
        limit=limit,
        after=after,
    )
    return Page(items=[RunRead.model_validate(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{run_id}")
def get_run(run_id: Id, session: SessionDep, actor: ActorDep) -> RunRead:
    """Read one run."""
    return RunRead.model_validate(service.get_run(run_id, actor=actor, session=session))


@router.post("/{run_id}/cancel")
async def cancel_run(run_id: Id, task_runs: TaskRunsDep, actor: ActorDep) -> RunRead:
    """Cancel a queued or running run; its in-flight model or tool call is interrupted."""
    return await task_runs.cancel(run_id, actor)
