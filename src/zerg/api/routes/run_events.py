"""GET /api/runs/{id}/events: a run's progress as Server-Sent Events, resumable by id.

The stream is the run's stored events (each with its id in the event log) followed live by
the ones still to come, and for a chat turn the model's tokens as `message.delta`. It ends
after the terminal event. `Last-Event-ID` resumes right after that event, with exactly the
events missed, even after a restart (a chat turn's tokens are kept in memory only: after a
restart, a message's tokens are represented by its stored `message.created`).
"""

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from zerg.api.deps import ActorDep, DatabaseDep, SettingsDep
from zerg.errors import InvalidInput
from zerg.events import Dropped, Event, EventBus, EventType
from zerg.events.log import run_events
from zerg.schemas.common import Id
from zerg.schemas.runs import RunRead, RunStatus
from zerg.services.run_records import check_run_visible
from zerg.services.runs import FINAL_STATUSES, read_run

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/runs", tags=["runs"])

_POSITION = re.compile(r"^(\d{1,18})(?:\.(\d{1,18}))?$")
Position = tuple[int, int]


def _position(value: str | None) -> Position:
    if value is None or not value.strip():
        return (0, 0)
    match = _POSITION.match(value.strip())
    if match is None:
        raise InvalidInput(
            f"Last-Event-ID {value[:40]!r} is not an event id of this stream (an id such as "
            "'17' or '17.3'); resume with the id of the last event received",
            code="invalid_last_event_id",
        )
    return (int(match[1]), int(match[2] or 0))


def _name(event: Event) -> str | None:
    """The SSE event name of a bus event, or None for one the stream leaves out."""
    if event.type == EventType.RUN_CREATED:
        return "run.queued"
    if event.type == EventType.RUN_UPDATED:
        status = event.data.get("status")
        if status == RunStatus.RUNNING:
            return "run.started"
        if status in FINAL_STATUSES:
            return f"run.{status}"
        return None
    if event.type == EventType.THREAD_MESSAGE_CREATED:
        return "message.created"
    if event.type == EventType.STREAM_CHUNK and event.data.get("chunk_type") == "assistant_token":
        return "message.delta"
    return None


def _terminal(event: Event) -> bool:
    return event.type == EventType.RUN_UPDATED and event.data.get("status") in FINAL_STATUSES


def _ended(run: RunRead, history: list[Event]) -> Event:
    """A terminal event for a finished run whose stored events were pruned, placed after
    whatever is left."""
    last = max((e.position for e in history), default=(0, 0))
    return Event(
        EventType.RUN_UPDATED,
        run.model_dump(mode="json"),
        owner_id=None,
        agent_id=run.agent_id,
        run_id=run.id,
        id_before=last[0],
        seq=last[1] + 1,
    )


def _sse(event: Event, name: str) -> ServerSentEvent:
    return ServerSentEvent(
        data=event.cached("sse", lambda: json.dumps(event.data, separators=(",", ":"))),
        event=name,
        id=event.stream_id,
    )


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"description": "The run's events, ending with its terminal event."},
        204: {"description": "The run has ended and the client has seen its terminal event."},
    },
)
async def stream_run_events(
    run_id: Id,
    request: Request,
    actor: ActorDep,
    database: DatabaseDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event.")
    ] = None,
    resume_after: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            description="Resume after this event (for clients that cannot send the header).",
        ),
    ] = None,
) -> Response:
    """Follow a run: `run.queued`, `run.started`, `message.created` for each message,
    `message.delta` for a chat turn's tokens, and one terminal event (`run.succeeded`,
    `run.failed`, `run.cancelled` or `run.timed_out`), after which the stream ends. Each
    event has an `id:`; `Last-Event-ID` resumes after it."""
    after = _position(last_event_id if last_event_id is not None else resume_after)
    bus: EventBus = request.app.state.bus
    with database.transaction() as db:
        check_run_visible(db, run_id, actor)
    # Subscribe before reading the log: an event committed meanwhile is in one or the other
    # (or both, and sent once).
    subscription = bus.subscribe([f"run:{run_id}"])
    try:
        with database.transaction() as db:
            # The status first: a final one was committed with its terminal event.
            run = read_run(run_id, db=db)
            stored = run_events(db, run_id)
        history = sorted([*stored, *bus.recent_chunks(run_id)], key=lambda e: e.position)
        terminal = next((e for e in history if _terminal(e)), None)
        if terminal is None and run.status in FINAL_STATUSES:
            # Its events are older than ZERG_EVENT_RETENTION_DAYS: the run itself ends it.
            terminal = _ended(run, history)
            history.append(terminal)
        if terminal is not None and terminal.position <= after:
            bus.unsubscribe(subscription)
            return Response(status_code=204)
    except BaseException:
        bus.unsubscribe(subscription)
        raise

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent = after
        try:
            for event in history:
                if event.position <= sent:
                    continue
                name = _name(event)
                sent = event.position
                if name is not None:
                    yield _sse(event, name)
                if _terminal(event):
                    return
            while True:
                try:
                    event = await subscription.get()
                except Dropped as dropped:
                    # Fell behind: the client reconnects and resumes from its last id.
                    logger.info("ended run %s's event stream: %s", run_id, dropped)
                    return
                if event.position <= sent:
                    continue
                if _terminal(event):
                    # Published out of order by another process or thread: whatever the log
                    # holds before the terminal event goes out first.
                    with database.transaction() as db:
                        missed = run_events(db, run_id, after=sent[0])
                    for stored_event in missed:
                        name = _name(stored_event)
                        if name is not None and stored_event.position > sent:
                            yield _sse(stored_event, name)
                        if _terminal(stored_event):
                            return
                    event_name = _name(event)
                    if event_name is not None:
                        yield _sse(event, event_name)
                    return
                name = _name(event)
                sent = event.position
                if name is not None:
                    yield _sse(event, name)
        finally:
            bus.unsubscribe(subscription)

    headers: dict[str, Any] = {"Cache-Control": "no-store"}
    # A client that stops reading is let go once a send has waited two heartbeats.
    return EventSourceResponse(
        events(),
        ping=settings.heartbeat_s,
        send_timeout=2 * settings.heartbeat_s,
        headers=headers,
    )
