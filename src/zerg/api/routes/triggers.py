"""Webhook triggers: /api/agents/{id}/triggers and /api/triggers/{id}/..."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from zerg.api.deps import DEFAULT_PAGE_LIMIT, After, DatabaseDep, Limit, SessionDep, TaskRunsDep
from zerg.errors import TooLarge
from zerg.models import Trigger
from zerg.schemas.common import Id, Page
from zerg.schemas.triggers import TriggerCreate, TriggerCreated, TriggerRead, TriggerRotated
from zerg.services import webhooks as service

router = APIRouter(tags=["triggers"])


def _read(trigger: Trigger, request: Request) -> TriggerRead:
    url = str(request.url_for("fire_trigger", trigger_id=trigger.id))
    return TriggerRead(
        id=trigger.id,
        agent_id=trigger.agent_id,
        scheme=trigger.scheme,
        url=url,
        created_at=trigger.created_at,
        last_fired_at=trigger.last_fired_at,
    )


@router.post("/agents/{agent_id}/triggers", status_code=201)
def create_trigger(
    agent_id: Id, data: TriggerCreate, request: Request, session: SessionDep
) -> TriggerCreated:
    """Create a webhook trigger; the answer is the only time its secret is shown."""
    trigger = service.create_trigger(agent_id, data.scheme, session=session)
    session.commit()
    return TriggerCreated(**_read(trigger, request).model_dump(), secret=trigger.secret)


@router.get("/agents/{agent_id}/triggers")
def list_triggers(
    agent_id: Id,
    request: Request,
    session: SessionDep,
    limit: Limit = DEFAULT_PAGE_LIMIT,
    after: After = None,
) -> Page[TriggerRead]:
    """An agent's webhook triggers, without their secrets."""
    page = service.list_triggers(agent_id, session=session, limit=limit, after=after)
    return Page(items=[_read(t, request) for t in page.items], next_cursor=page.next_cursor)


@router.delete("/triggers/{trigger_id}", status_code=204)
def delete_trigger(trigger_id: Id, session: SessionDep) -> Response:
    """Delete a webhook trigger; its URL stops accepting deliveries."""
    service.delete_trigger(trigger_id, session=session)
    session.commit()
    return Response(status_code=204)


@router.post("/triggers/{trigger_id}/rotate")
def rotate_secret(trigger_id: Id, session: SessionDep) -> TriggerRotated:
    """Issue a new secret; the previous one keeps working for a grace period."""
    trigger = service.rotate_secret(trigger_id, session=session)
    session.commit()
    assert trigger.previous_secret_expires_at is not None
    return TriggerRotated(
        id=trigger.id,
        secret=trigger.secret,
        previous_secret_valid_until=trigger.previous_secret_expires_at,
    )


async def _body(request: Request) -> bytes:
    """The raw body, refused as soon as it passes the size limit."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > service.MAX_BODY_BYTES:
            raise TooLarge(
                f"a delivery may be at most {service.MAX_BODY_BYTES // 1024} KiB",
                code="payload_too_large",
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/triggers/{trigger_id}/fire", name="fire_trigger", status_code=202)
async def fire_trigger(
    trigger_id: Id, request: Request, database: DatabaseDep, task_runs: TaskRunsDep
) -> JSONResponse:
    """Receive a signed delivery: 202 with the run it started, 200 with the run of a delivery
    seen before (same webhook-id), 401 when the signature or timestamp is wrong."""
    body = await _body(request)
    with database.session() as session:
        trigger = service.get_trigger(trigger_id, session=session)
        delivery = service.verify_delivery(trigger, body, request.headers)
        agent_id, key = trigger.agent_id, f"webhook:{trigger.id}:{delivery.id}"
        seen = service.run_for_delivery(key, session=session)
        service.mark_fired(trigger, session=session)
        session.commit()
    if seen is not None:
        return JSONResponse(seen.model_dump(mode="json"), status_code=200)
    run = await task_runs.trigger(
        agent_id, trigger="webhook", idempotency_key=key, input=delivery.payload
    )
    return JSONResponse(run.model_dump(mode="json"), status_code=202)
