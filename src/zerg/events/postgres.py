"""The event bus across processes, over PostgreSQL LISTEN/NOTIFY.

Every event published in this process is also NOTIFYed on one channel; a listener thread
delivers the other processes' events to this process's subscribers (a run executing on a
worker reaches a request waiting on an API replica). Events are sent by a background thread,
so `publish` never waits on the network, and in order, since one connection sends them all.
NOTIFY payloads are limited to 8000 bytes: a larger event travels in several parts.
"""

import base64
import json
import logging
import queue
import threading
import uuid
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from zerg.events.bus import Event, EventBus, EventType

logger = logging.getLogger(__name__)

CHANNEL = "zerg_events"
# Bytes of an event per NOTIFY (base64-encoded, so 4/3 of it on the wire, well under 8000).
_PART_BYTES = 5000
_MAX_BATCH = 200
_RECONNECT_S = 1.0
_POLL_S = 0.2


def libpq_url(sqlalchemy_url: str) -> str:
    """`postgresql+psycopg://...` as the plain `postgresql://...` URL psycopg connects to."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


def encode(event: Event, origin: str) -> list[str]:
    """The NOTIFY payloads that carry `event`: one, or its parts in order."""
    body = json.dumps({"o": origin, "t": event.type.value, "d": event.data})
    raw = body.encode()
    if len(raw) <= _PART_BYTES:
        return [body]
    message = uuid.uuid4().hex
    chunks = [raw[i : i + _PART_BYTES] for i in range(0, len(raw), _PART_BYTES)]
    return [
        json.dumps(
            {"o": origin, "m": message, "i": i, "n": len(chunks), "p": base64.b64encode(c).decode()}
        )
        for i, c in enumerate(chunks)
    ]


class _Reassembler:
    """Turns NOTIFY payloads back into (origin, event) pairs."""

    def __init__(self) -> None:
        self._parts: dict[str, list[bytes]] = {}

    def feed(self, payload: str) -> tuple[str, Event] | None:
        envelope: dict[str, Any] = json.loads(payload)
        if "m" in envelope:
            parts = self._parts.setdefault(envelope["m"], [])
            parts.append(base64.b64decode(envelope["p"]))
            if len(parts) < envelope["n"]:
                if len(self._parts) > 1000:  # parts of a sender that died mid-message
                    self._parts.pop(next(iter(self._parts)))
                return None
            envelope = json.loads(b"".join(self._parts.pop(envelope["m"])))
        return envelope["o"], Event(EventType(envelope["t"]), envelope["d"])


class PostgresRelay:
    """Connects an `EventBus` to the same bus in every other process on the database."""

    def __init__(self, bus: EventBus, database_url: str) -> None:
        self.bus = bus
        self.origin = uuid.uuid4().hex
        self._conninfo = libpq_url(database_url)
        self._outbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, timeout_s: float = 10) -> None:
        """Start relaying; returns once this process listens (or after `timeout_s`)."""
        self._stopping.clear()
        for target, name in ((self._listen, "listen"), (self._send, "notify")):
            thread = threading.Thread(target=target, name=f"zerg-events-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.bus.set_relay(self._outbox.put)
        if not self._listening.wait(timeout_s):
            logger.warning("not yet listening for other processes' events; still trying")

    def stop(self) -> None:
        self.bus.set_relay(None)
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    # -- sending ---------------------------------------------------------------------------

    def _send(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        while not self._stopping.is_set() or not self._outbox.empty():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(self._conninfo, autocommit=True)
                # One transaction: the batch's notifications arrive together and in order.
                with connection.transaction():
                    for event in batch:
                        for payload in encode(event, self.origin):
                            connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except Exception as exc:
                logger.warning("could not send %d events to other processes: %s", len(batch), exc)
                _close(connection)
                connection = None
                self._stopping.wait(_RECONNECT_S)
        _close(connection)

    def _next_batch(self) -> list[Event]:
        try:
            batch = [self._outbox.get(timeout=_POLL_S)]
        except queue.Empty:
            return []
        while len(batch) < _MAX_BATCH:
            try:
                batch.append(self._outbox.get_nowait())
            except queue.Empty:
                break
        return batch

    # -- receiving -------------------------------------------------------------------------

    def _listen(self) -> None:
        while not self._stopping.is_set():
            connection: psycopg.Connection[Any] | None = None
            try:
                connection = psycopg.connect(self._conninfo, autocommit=True)
                connection.execute(f"LISTEN {CHANNEL}")
                self._listening.set()
                self._receive(connection)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                logger.warning("cannot receive other processes' events (retrying): %s", exc)
                self._stopping.wait(_RECONNECT_S)
            finally:
                _close(connection)

    def _receive(self, connection: psycopg.Connection[Any]) -> None:
        reassembler = _Reassembler()
        while not self._stopping.is_set():
            for notify in connection.notifies(timeout=_POLL_S):
                try:
                    decoded = reassembler.feed(notify.payload)
                except (ValueError, KeyError, TypeError):
                    logger.warning("ignored a malformed event: %.200s", notify.payload)
                    continue
                if decoded is not None and decoded[0] != self.origin:
                    self.bus.deliver(decoded[1])


def _close(connection: psycopg.Connection[Any] | None) -> None:
    if connection is not None:
        try:
            connection.close()
        except Exception:  # pragma: no cover - closing a broken connection
            logger.debug("closing a broken connection failed", exc_info=True)
