"""/api/agents/{id}/task: start a task run."""

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from zerg.api.deps import ActorDep, TaskRunsDep
from zerg.schemas.common import Id
from zerg.schemas.runs import RunRead
from zerg.services.runs import FINAL_STATUSES

router = APIRouter(tags=["runs"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Repeat a request with the same key to get the same run, not a new one.",
    ),
]


@router.post(
    "/agents/{agent_id}/task",
    status_code=202,
    responses={
        202: {"model": RunRead, "description": "The queued run (with wait=true: unfinished)."},
        200: {"model": RunRead, "description": "With wait=true: the finished run."},
    },
)
async def run_task(
    agent_id: Id,
    task_runs: TaskRunsDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKey = None,
    wait: Annotated[bool, Query(description="Answer when the run has finished.")] = False,
    timeout_s: Annotated[
        float, Query(gt=0, le=3600, description="With wait=true, how long to wait at most.")
    ] = 300,
) -> JSONResponse:
    """Start a task run of the agent; 202 with the queued run, or 200 with it finished."""
    # A run started with an API token is an `api` run, and records which token started it.
    run = await task_runs.trigger(
        agent_id,
        trigger="manual" if actor.token_id is None else "api",
        idempotency_key=idempotency_key,
        token_id=actor.token_id,
        actor=actor,
    )
    status = 202
    if wait:
        run = await task_runs.wait(run.id, timeout_s)
        status = 200 if run.status in FINAL_STATUSES else 202
    return JSONResponse(run.model_dump(mode="json"), status_code=status)
