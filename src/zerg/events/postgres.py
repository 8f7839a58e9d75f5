"""The event bus across processes, over PostgreSQL LISTEN/NOTIFY.

Every event reaches the other processes as a NOTIFY on one channel (`zerg.events.wire`); a
listener thread delivers the other processes' events to this process's subscribers (a run
executing on a worker reaches a request waiting on an API replica). Most stored events are
NOTIFYed by the transaction that records them, so they go out when it commits, with no
statement or transaction of their own. The others (a chat turn's, and its stream, which is
never stored) are sent as they are published by a background thread, so `publish` never waits
on the network, and in order, since one connection sends them all, each batch in one
statement.

A notification sent while a listener is disconnected never reaches it, so the stored log is
the source of truth for gaps: after it reconnects, the listener reads the events recorded since
shortly before it lost its connection and delivers those it had not seen (the bus skips ids it
has). Chat stream chunks are not stored, so a turn streamed during the gap is seen as its
stored messages.
"""

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from zerg import clock
from zerg.events.bus import Event, EventBus
from zerg.events.wire import CHANNEL, NOTIFY_ALL, Reassembler, encode, sender

logger = logging.getLogger(__name__)

_MAX_BATCH = 200
_RECONNECT_S = 1.0
_POLL_S = 0.2
# The catch-up after a reconnect reads back from this long before the connection was last
# known to work (an event is recorded a moment before its transaction commits and is sent).
_CATCH_UP_MARGIN = timedelta(seconds=30)
# How often a quiet listening connection is checked; TCP keepalives end a silent one.
_ALIVE_CHECK_S = 5.0
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def libpq_url(sqlalchemy_url: str) -> str:
    """`postgresql+psycopg://...` as the plain `postgresql://...` URL psycopg connects to."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


class PostgresRelay:
    """Connects an `EventBus` to the same bus in every other process on the database."""

    def __init__(
        self,
        bus: EventBus,
        database_url: str,
        catch_up: Callable[[datetime], Sequence[Event]] | None = None,
    ) -> None:
        """`catch_up(since)` reads the events stored since then (after a reconnect)."""
        self.bus = bus
        self._catch_up = catch_up
        self.origin = uuid.uuid4().hex
        url = libpq_url(database_url)
        named = {} if "application_name" in url else {"application_name": "zerg-events"}
        self._conninfo = make_conninfo(url, **_KEEPALIVE, **named)
        self._outbox: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._alive_at: datetime | None = None  # when the listener last knew it was connected

    def start(self, timeout_s: float = 10) -> None:
        """Start relaying; returns once this process listens (or after `timeout_s`)."""
        self._stopping.clear()
        for target, name in ((self._listen, "listen"), (self._send, "notify")):
            thread = threading.Thread(target=target, name=f"zerg-events-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.bus.set_relay(self._relay)
        if not self._listening.wait(timeout_s):
            logger.warning("not yet listening for other processes' events; still trying")

    def stop(self) -> None:
        self.bus.set_relay(None)
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    # -- sending ---------------------------------------------------------------------------

    def _relay(self, event: Event) -> None:
        if not event.notified:  # else its transaction sent it
            self._outbox.put(event)

    def _send(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        batch: list[Event] = []
        failures = 0
        while not self._stopping.is_set() or not self._outbox.empty() or batch:
            if not batch:
                batch, failures = self._next_batch(), 0
                if not batch:
                    continue
            try:
                if connection is None or connection.closed:
                    connection = psycopg.connect(self._conninfo, autocommit=True)
                # One statement: the batch's notifications arrive together and in order.
                payloads = [p for event in batch for p in encode(event, self.origin)]
                connection.execute(NOTIFY_ALL, (CHANNEL, payloads))
                batch = []
            except Exception as exc:
                # Sent again on a new connection until it goes through: the events were
                # committed, so the database is there to take them.
                failures += 1
                logger.warning(
                    "could not send %d events to other processes (attempt %d): %s",
                    len(batch),
                    failures,
                    exc,
                )
                if self._stopping.is_set():
                    batch = []
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
        lost_since: datetime | None = None
        while not self._stopping.is_set():
            connection: psycopg.Connection[Any] | None = None
            try:
                connection = psycopg.connect(self._conninfo, autocommit=True)
                connection.execute(f"LISTEN {CHANNEL}")
                self._listening.set()
                if lost_since is not None:
                    self._deliver_missed(lost_since)
                    lost_since = None
                self._alive_at = clock.now()
                self._receive(connection)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                if lost_since is None:
                    # From the last moment the connection was known to work: a dead one may
                    # have gone unnoticed for a while.
                    lost_since = self._alive_at or clock.now()
                logger.warning("cannot receive other processes' events (retrying): %s", exc)
                self._stopping.wait(_RECONNECT_S)
            finally:
                _close(connection)

    def _deliver_missed(self, lost_at: datetime) -> None:
        """Deliver the stored events this process may have missed while not listening."""
        if self._catch_up is None:
            return
        missed = 0
        for event in self._catch_up(lost_at - _CATCH_UP_MARGIN):
            missed += self.bus.deliver(event)
        if missed:
            logger.info("delivered %d events sent while not listening", missed)

    def _receive(self, connection: psycopg.Connection[Any]) -> None:
        reassembler = Reassembler()
        own = sender(self.origin)  # this process published those itself
        checked = time.monotonic()
        while not self._stopping.is_set():
            if time.monotonic() - checked >= _ALIVE_CHECK_S:
                # A quiet connection may be a dead one (notifies() cannot tell): ask.
                connection.execute("SELECT 1")
                checked = time.monotonic()
                self._alive_at = clock.now()
            for notify in connection.notifies(timeout=_POLL_S):
                if notify.payload.startswith(own):
                    continue
                try:
                    event = reassembler.feed(notify.payload)
                except (ValueError, KeyError, TypeError):
                    logger.warning("ignored a malformed event: %.200s", notify.payload)
                    continue
                if event is not None:
                    self.bus.deliver(event)


def _close(connection: psycopg.Connection[Any] | None) -> None:
    if connection is not None:
        try:
            connection.close()
        except Exception:  # pragma: no cover - closing a broken connection
            logger.debug("closing a broken connection failed", exc_info=True)
