"""GET /api/ws: the WebSocket hub. A client subscribes to topics and gets their events live.

Topics: `agents` (every agent and run event of the agents the user may see), `agent:{id}`
(the agent, its runs and threads), `thread:{id}` (its messages, runs, and a chat turn's
`stream_start`, `stream_chunk`s and `stream_end`) and `run:{id}` (the run and its messages).
A topic of an object the user may not see is refused like a missing one.

Client → server: `{"type": "subscribe" | "unsubscribe", "topics": [...]}`, `{"type": "ping"}`.
Server → client: `{"type", "topic", "id", "data"}` for events (`id`: the event log's id, or
`"N.k"` for a stream event), `subscribed` / `unsubscribed`, `pong`, and `error` (the connection
stays open). Each client's buffer is bounded: one that falls `ZERG_EVENT_BUFFER` events behind
is disconnected (1013) and nobody else waits for it. WebSocket pings (`ZERG_HEARTBEAT_S`) find
dead peers.

A connection lasts as long as what opened it: every `ZERG_HEARTBEAT_S` its session or token is
checked again. One signed out, expired or revoked, or a user disabled, closes it with 4401
(the reason says why; connecting again needs a new sign-in or token), and a user whose rights
changed (an admin no longer) is closed with 4403, to connect again with the rights they now have.
"""

import asyncio
import json
import logging
import re
from contextlib import suppress
from typing import Any

from fastapi import APIRouter, WebSocket
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect, WebSocketState

from zerg.api.auth import actor_of, check_origin
from zerg.api.errors import response_for
from zerg.db import Database
from zerg.errors import NotFound, ZergError
from zerg.events import AGENTS_TOPIC, Dropped, Event, EventBus
from zerg.models import Agent, Run, Thread
from zerg.schemas.common import MAX_ID
from zerg.services.ownership import may_see, scoped
from zerg.services.users import Actor
from zerg.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter()

MAX_TOPICS = 1000
# A client message is a subscribe with topics at most: 64 KiB is plenty.
MAX_MESSAGE_BYTES = 64 * 1024
TRY_AGAIN_LATER = 1013
CREDENTIALS_ENDED = 4401
RIGHTS_CHANGED = 4403
_TOPIC = re.compile(r"^(agent|thread|run):([1-9][0-9]{0,9})$")


@router.websocket("/api/ws")
async def hub(websocket: WebSocket) -> None:
    try:
        actor = actor_of(websocket)
        check_origin(websocket)
    except ZergError as error:
        await websocket.send_denial_response(response_for(error))
        return
    await websocket.accept()
    connections = websocket.app.state.metrics.websocket_connections
    connections.inc()
    try:
        await _Client(websocket, actor).serve()
    finally:
        connections.dec()


class _Client:
    """One connection: a reader of the client's messages and a sender of events."""

    def __init__(self, websocket: WebSocket, actor: Actor) -> None:
        self.websocket = websocket
        self.actor = actor
        state = websocket.app.state
        self.bus: EventBus = state.bus
        self.database: Database = state.database
        settings: Settings = state.settings
        self.recheck_s = settings.heartbeat_s
        self.ended: tuple[int, str] | None = None  # why the credentials check closes it
        self.subscription = self.bus.subscribe(
            (), limit=settings.event_buffer, accept=lambda e: may_see(actor, e.owner_id)
        )
        self._send_lock = asyncio.Lock()

    async def serve(self) -> None:
        reader = asyncio.create_task(self._read())
        sender = asyncio.create_task(self._send_events())
        checker = asyncio.create_task(self._recheck())
        tasks = (reader, sender, checker)
        # A dropped client may be stuck in a send (it stopped reading): stop waiting for it.
        self.subscription.on_drop = sender.cancel
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            self.bus.unsubscribe(self.subscription)
        if self.subscription.dropped is not None:
            logger.info("dropped a WebSocket client: %s", self.subscription.dropped)
            await self._close(TRY_AGAIN_LATER, self.subscription.dropped)
        elif self.ended is not None:
            await self._close(*self.ended)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, _Gone):
                logger.error("WebSocket client failed", exc_info=error)

    async def _close(self, code: int, reason: str) -> None:
        """Close, unless the peer stopped reading: then the server lets go (uvicorn closes
        the connection when this handler returns)."""
        if self.websocket.client_state != WebSocketState.CONNECTED:
            return
        with suppress(Exception):
            async with asyncio.timeout(1.0):
                # A close frame's reason is at most 123 bytes of UTF-8.
                await self.websocket.close(code, reason.encode()[:120].decode(errors="ignore"))

    async def _recheck(self) -> None:
        """Check the connection's session or token again every interval; returns (with
        `ended` set) once it no longer stands or stands for other rights."""
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                actor = await asyncio.to_thread(actor_of, self.websocket)
            except ZergError as error:
                self.ended = (CREDENTIALS_ENDED, error.detail)
                return
            except SQLAlchemyError as error:  # the database is away: check again next time
                logger.warning("could not check a WebSocket client's sign-in again: %s", error)
                continue
            if actor != self.actor:
                self.ended = (RIGHTS_CHANGED, "your rights changed; connect again")
                return

    # -- client → server -------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self._error("bad_json", "send JSON text messages, not binary ones")
                continue
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError as exc:
            await self._error("bad_json", f"the message is not JSON: {exc}")
            return
        if not isinstance(message, dict):
            await self._error("bad_json", "a message is a JSON object with a `type`")
            return
        kind = message.get("type")
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind in ("subscribe", "unsubscribe"):
            topics = message.get("topics")
            if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
                await self._error("bad_json", f"`{kind}` needs `topics`, a list of strings")
                return
            if kind == "subscribe":
                await self._subscribe(topics)
            else:
                names = [t for t in dict.fromkeys(topics) if t in self.subscription.topics]
                self.bus.remove_topics(self.subscription, names)
                await self._send({"type": "unsubscribed", "topics": names})
        else:
            await self._error(
                "unknown_type",
                f"unknown message type {str(kind)[:40]!r}; send subscribe, unsubscribe or ping",
            )

    async def _subscribe(self, topics: list[str]) -> None:
        new = [t for t in dict.fromkeys(topics) if t not in self.subscription.topics]
        room = max(0, MAX_TOPICS - len(self.subscription.topics))
        new, over = new[:room], new[room:]
        # One thread hop and one query per kind of object for the whole message: the checks
        # never hold up the event loop.
        refused = await asyncio.to_thread(self._refusals, new) if new else {}
        accepted = [t for t in new if t not in refused]
        self.bus.add_topics(self.subscription, accepted)
        for topic in new:  # errors in the order the topics were asked for
            error = refused.get(topic)
            if error is not None:
                await self._error(error.code, error.detail, topic)
        for topic in over:
            await self._error(
                "too_many_topics",
                f"a connection follows at most {MAX_TOPICS} topics; unsubscribe some first",
                topic,
            )
        already = [t for t in dict.fromkeys(topics) if t in self.subscription.topics]
        await self._send({"type": "subscribed", "topics": already})

    def _refusals(self, topics: list[str]) -> dict[str, ZergError]:
        """Why each topic the user may not follow is refused: unknown, or `not_found` for an
        object that is missing or another user's (the same answer)."""
        refused: dict[str, ZergError] = {}
        wanted: dict[str, dict[int, str]] = {"agent": {}, "thread": {}, "run": {}}
        for topic in topics:
            if topic == AGENTS_TOPIC:
                continue
            match = _TOPIC.match(topic)
            if match is None or int(match[2]) > MAX_ID:
                refused[topic] = ZergError(
                    f"unknown topic {topic[:60]!r}; topics are 'agents', 'agent:<id>', "
                    "'thread:<id>' and 'run:<id>'",
                    code="unknown_topic",
                )
            else:
                wanted[match[1]][int(match[2])] = topic
        if not any(wanted.values()):
            return refused
        with self.database.session() as session:
            visible = {
                "agent": _visible(session, self.actor, Agent.id, Agent.id, wanted["agent"]),
                "thread": _visible(
                    session, self.actor, Thread.id, Thread.agent_id, wanted["thread"]
                ),
                "run": _visible(session, self.actor, Run.id, Run.agent_id, wanted["run"]),
            }
        for kind, ids in wanted.items():
            for object_id, topic in ids.items():
                if object_id not in visible[kind]:
                    refused[topic] = NotFound(f"{kind} {object_id} does not exist")
        return refused

    # -- server → client -------------------------------------------------------------------

    async def _send_events(self) -> None:
        while True:
            try:
                event = await self.subscription.get()
            except Dropped:
                return
            await self._send_text(self._frame(event))

    def _frame(self, event: Event) -> str:
        subscribed = self.subscription.topics
        topic = next((t for t in event.topics if t in subscribed), event.topics[0])
        return str(
            event.cached(
                f"ws:{topic}",
                lambda: json.dumps(
                    {
                        "type": event.type.value,
                        "topic": topic,
                        "id": event.id if event.id is not None else event.stream_id,
                        "data": event.data,
                    },
                    separators=(",", ":"),
                ),
            )
        )

    async def _error(self, code: str, detail: str, topic: str | None = None) -> None:
        await self._send(
            {"type": "error", "topic": topic, "data": {"code": code, "detail": detail}}
        )

    async def _send(self, message: dict[str, Any]) -> None:
        await self._send_text(json.dumps(message, separators=(",", ":")))

    async def _send_text(self, text: str) -> None:
        async with self._send_lock:
            try:
                await self.websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError):
                raise _Gone from None


def _visible(
    session: Session, actor: Actor, id_column: Any, agent_column: Any, ids: dict[int, str]
) -> set[int]:
    """Which of `ids` exist and are the actor's to see."""
    if not ids:
        return set()
    stmt = scoped(select(id_column).where(id_column.in_(list(ids))), actor, agent_column)
    return set(session.scalars(stmt))


class _Gone(Exception):
    """The client has disconnected."""
