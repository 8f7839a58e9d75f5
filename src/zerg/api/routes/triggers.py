"""Webhook triggers: /api/agents/{id}/triggers, /api/triggers/{id}/... and the deliveries
to /hooks/{public_id}."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from zerg.api.deps import (
    DEFAULT_PAGE_LIMIT,
    ActorDep,
    After,
    DatabaseDep,
    Limit,
    SessionDep,
    TaskRunsDep,
)
from zerg.errors import BudgetExceeded, TooLarge, ZergError
from zerg.models import Trigger
from zerg.schemas.common import ErrorBody, Id, Page
from zerg.schemas.runs import RunRead
from zerg.schemas.triggers import TriggerCreate, TriggerCreated, TriggerRead, TriggerRotated
from zerg.services import webhooks as service

router = APIRouter(tags=["triggers"])
# Deliveries authenticate by their signature, not by an API token: a router of their own, served
# outside /api so that a reverse proxy can expose deliveries alone.
deliveries = APIRouter(tags=["triggers"])
PublicId = Annotated[str, Path(description="The trigger's `public_id` (its `url` ends in it).")]
DAY_BUDGET_SPENT = (
    "the agent's daily budget is spent; deliveries start runs again after midnight UTC"
)


def _read(trigger: Trigger, request: Request) -> TriggerRead:
    url = str(request.url_for("fire_trigger", public_id=trigger.public_id))
    return TriggerRead(
        id=trigger.id,
        agent_id=trigger.agent_id,
        public_id=trigger.public_id,
        scheme=trigger.scheme,
        url=url,
        created_at=trigger.created_at,
        last_fired_at=trigger.last_fired_at,
    )


@router.post("/agents/{agent_id}/triggers", status_code=201)
def create_trigger(
    agent_id: Id, data: TriggerCreate, request: Request, session: SessionDep, actor: ActorDep
) -> TriggerCreated:
    """Create a webhook trigger; the answer is the only time its secret is shown."""
    trigger = service.create_trigger(agent_id, data.scheme, actor=actor, session=session)
    session.commit()
    return TriggerCreated(**_read(trigger, request).model_dump(), secret=trigger.secret)


@router.get("/agents/{agent_id}/triggers")
def list_triggers(
    agent_id: Id,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    limit: Limit = DEFAULT_PAGE_LIMIT,
    after: After = None,
) -> Page[TriggerRead]:
    """An agent's webhook triggers, without their secrets."""
    page = service.list_triggers(agent_id, actor=actor, session=session, limit=limit, after=after)
    return Page(items=[_read(t, request) for t in page.items], next_cursor=page.next_cursor)


@router.delete("/triggers/{trigger_id}", status_code=204)
def delete_trigger(trigger_id: Id, session: SessionDep, actor: ActorDep) -> Response:
    """Delete a webhook trigger; its URL stops accepting deliveries."""
    service.delete_trigger(trigger_id, actor=actor, session=session)
    session.commit()
    return Response(status_code=204)


@router.post("/triggers/{trigger_id}/rotate")
def rotate_secret(trigger_id: Id, session: SessionDep, actor: ActorDep) -> TriggerRotated:
    """Issue a new secret; the previous one keeps working for a grace period."""
    trigger = service.rotate_secret(trigger_id, actor=actor, session=session)
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


def _header(name: str, description: str, max_length: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if max_length is not None:
        schema["maxLength"] = max_length
    return {"name": name, "in": "header", "description": description, "schema": schema}


# The route reads the raw body itself (the signature covers its exact bytes), so FastAPI cannot
# describe it: say what it takes and answers, so that clients and fuzzers see the real contract.
_ID_LENGTH = service.MAX_DELIVERY_ID_LENGTH
_ANY_BODY = {"schema": {"type": "string", "format": "binary"}}
_FIRE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The delivery exactly as signed: JSON (nested at most "
        f"{service.MAX_PAYLOAD_DEPTH} deep) or any other content, at most "
        f"{service.MAX_BODY_BYTES // 1024} KiB.",
        "content": {"application/json": {"schema": {}}, "*/*": _ANY_BODY},
    },
    "parameters": [
        _header("webhook-id", "Standard Webhooks: the signed message id.", _ID_LENGTH),
        _header("webhook-timestamp", "Standard Webhooks: the send time in Unix seconds."),
        _header("webhook-signature", "Standard Webhooks: `v1,<base64 HMAC>`, space separated."),
        _header("X-Hub-Signature-256", "GitHub: `sha256=<hex HMAC-SHA256 of the body>`."),
        _header("X-GitHub-Delivery", "GitHub: the delivery id.", _ID_LENGTH),
    ],
}
_FIRE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": RunRead, "description": "The run the delivery started."},
    200: {"model": RunRead, "description": "The run an earlier copy of the delivery started."},
    401: {"model": ErrorBody, "description": "The signature or the timestamp is wrong."},
    404: {"model": ErrorBody, "description": "No such trigger."},
    413: {"model": ErrorBody, "description": "The body is too large."},
    429: {
        "model": ErrorBody,
        "description": "The agent's queue is full, or its daily budget is spent.",
    },
    422: {
        "model": ErrorBody,
        "description": "The payload nests too deep or the delivery id is too long.",
    },
}


async def _count_rejections(request: Request) -> AsyncIterator[None]:
    """A refused delivery counts in `zerg_webhook_rejections_total` under its error code (a
    small, fixed set of reasons)."""
    try:
        yield
    except ZergError as error:
        request.app.state.metrics.webhook_rejections.labels(error.code).inc()
        raise


@deliveries.post(
    "/hooks/{public_id}",
    name="fire_trigger",
    status_code=202,
    responses=_FIRE_RESPONSES,
    openapi_extra=_FIRE_OPENAPI,
    dependencies=[Depends(_count_rejections)],
)
async def fire_trigger(
    public_id: PublicId, request: Request, database: DatabaseDep, task_runs: TaskRunsDep
) -> JSONResponse:
    """Receive a signed delivery: 202 with the run it started, 200 with the run of a delivery
    seen before (same delivery id, or for GitHub the same body within 24 hours), 401 when the
    signature or timestamp is wrong."""
    body = await _body(request)
    with database.session() as session:
        trigger = service.trigger_for_delivery(public_id, session=session)
        delivery = service.verify_delivery(trigger, body, request.headers)
        seen = service.run_for_delivery(trigger, delivery, session=session)
        service.mark_fired(trigger, session=session)
        session.commit()
        agent_id = trigger.agent_id
    if seen is not None:
        return JSONResponse(seen.model_dump(mode="json"), status_code=200)
    try:
        run = await task_runs.trigger(
            agent_id,
            trigger="webhook",
            idempotency_key=delivery.key,
            input=delivery.payload,
            delivery_hash=delivery.body_hash,
        )
    except BudgetExceeded:
        # The sender learns that it may retry tomorrow, not what the agent spent.
        raise BudgetExceeded(DAY_BUDGET_SPENT) from None
    return JSONResponse(run.model_dump(mode="json"), status_code=202)
