"""The server's live channels as a client reads them: a run's Server-Sent Events and the
WebSocket hub, both with the token the other commands send."""

import json
import queue
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from zerg.cli.common import EXIT_ERROR, EXIT_NOT_FOUND, auth_headers, fail, token_in_force
from zerg.settings import Settings

TERMINAL_EVENTS = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.timed_out"})
# Reconnections in a row without a new event before a stream is given up.
MAX_RESUMES = 5
# Longer than the server's heartbeat (15 s unless it sets ZERG_HEARTBEAT_S): a quiet stream is a
# dead one, and is resumed.
READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Events from the lines of a `text/event-stream` (the WHATWG format): comments (the
    server's heartbeats) and unknown fields are skipped, and a blank line ends an event."""
    name, data, last_id = "message", list[str](), None
    for line in lines:
        if not line:
            if data:
                yield SseEvent(name, "\n".join(data), last_id)
            name, data = "message", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
        elif field == "id" and "\0" not in value:
            last_id = value


class RunEvents:
    """A run's event stream, read by a background thread so that the caller waits with its own
    deadline (and a spinner keeps turning). A dropped stream is resumed after its last event.

    `get` returns the next event, None once the stream has ended, or raises what stopped it."""

    def __init__(self, settings: Settings, run_id: int) -> None:
        self._url = f"{settings.resolved_server_url}/api/runs/{run_id}/events"
        self._headers = auth_headers(token_in_force(settings))
        self._events: queue.Queue[SseEvent | Exception | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"run-{run_id}-events", daemon=True)

    def __enter__(self) -> "RunEvents":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        # The thread notices between two events (heartbeats come every few seconds); as a daemon
        # it never holds the process up.
        self._stop.set()

    def get(self, timeout: float) -> SseEvent | None:
        """The next event; raises queue.Empty after `timeout` seconds without one."""
        item = self._events.get(timeout=timeout)
        if isinstance(item, Exception):
            raise item
        return item

    def _read(self) -> None:
        try:
            self._follow()
        # Handed to the caller, who decides what a broken stream means.
        except Exception as exc:
            self._events.put(exc)
        else:
            self._events.put(None)

    def _follow(self) -> None:
        last_id: str | None = None
        resumes = 0
        with httpx.Client(timeout=httpx.Timeout(10, read=READ_TIMEOUT_S)) as client:
            while not self._stop.is_set():
                headers = {**self._headers, **({"Last-Event-ID": last_id} if last_id else {})}
                try:
                    with client.stream("GET", self._url, headers=headers) as response:
                        if response.status_code == 204:  # ended, and its end was seen
                            return
                        response.raise_for_status()
                        for event in parse_sse(response.iter_lines()):
                            last_id, resumes = event.id or last_id, 0
                            self._events.put(event)
                            if event.event in TERMINAL_EVENTS or self._stop.is_set():
                                return
                except httpx.TransportError:
                    if resumes >= MAX_RESUMES:
                        raise
                # Cut off without its terminal event (a restart, a proxy, a slow reader): resume.
                resumes += 1
                self._stop.wait(0.2 * 2**resumes)


def hub_url(settings: Settings) -> str:
    base = settings.resolved_server_url
    scheme, _, rest = base.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/api/ws"


@contextmanager
def open_hub(settings: Settings, topics: list[str]) -> Iterator[ClientConnection]:
    """A hub connection subscribed to `topics`. A refused subscription (an agent that does not
    exist, or is another user's) is the command's error; a refused handshake too, unless the
    server is failing (5xx: a proxy whose server restarts), which is raised to retry."""
    headers = auth_headers(token_in_force(settings))
    try:
        with connect(hub_url(settings), additional_headers=headers, open_timeout=10) as ws:
            _subscribe(ws, topics)
            yield ws
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status >= 500:
            raise ConnectionError(f"the server answered {status}") from None
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        fail(f"the server refused the WebSocket connection to {hub_url(settings)}: {body[:200]}")


def _subscribe(ws: ClientConnection, topics: list[str]) -> None:
    ws.send(json.dumps({"type": "subscribe", "topics": topics}))
    while True:
        answer = json.loads(ws.recv(timeout=10))
        if answer.get("type") == "subscribed":
            return
        if answer.get("type") == "error":
            error = answer.get("data") or {}
            code = EXIT_NOT_FOUND if error.get("code") == "not_found" else EXIT_ERROR
            fail(str(error.get("detail", answer)), code)
