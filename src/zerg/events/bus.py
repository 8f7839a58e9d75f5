"""The event bus: events routed by topic to bounded subscriber buffers, from any thread to any
event loop.

Runs execute on whichever event loop or thread the run engine uses, while subscribers (a
WebSocket, an SSE stream, a request waiting for its run) live on the server's loop, so delivery
to another loop goes through one `call_soon_threadsafe` per loop and event. A publish touches
only the subscribers of the event's topics. Each subscriber's buffer is bounded: one that falls
that far behind is dropped, with the reason, and nobody else waits for it.

Stored events (everything but chat's stream events) carry the id the event log gave them;
see `zerg.events.log`.
"""

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_BUFFER = 1000
AGENTS_TOPIC = "agents"
# Chat stream chunks are kept while their turn streams and this long after it ended, so a
# stream that reconnects meanwhile misses none (later, the stored messages stand for them);
# at most this many in all, the oldest turn's let go first.
_CHUNKS_KEPT_AFTER_END_S = 60.0
_MAX_KEPT_CHUNKS = 100_000


class EventType(StrEnum):
    AGENT_CREATED = "agent_created"
    AGENT_UPDATED = "agent_updated"
    AGENT_DELETED = "agent_deleted"
    THREAD_CREATED = "thread_created"
    THREAD_UPDATED = "thread_updated"
    THREAD_DELETED = "thread_deleted"
    THREAD_MESSAGE_CREATED = "thread_message_created"
    RUN_CREATED = "run_created"
    RUN_UPDATED = "run_updated"
    # Chat's stream events: published as the model produces them, never stored.
    STREAM_START = "stream_start"
    STREAM_CHUNK = "stream_chunk"
    STREAM_END = "stream_end"


STREAM_TYPES = frozenset({EventType.STREAM_START, EventType.STREAM_CHUNK, EventType.STREAM_END})
# A thread's messages and stream go to its thread and run topics, not to its agent's.
_THREAD_ONLY_TYPES = STREAM_TYPES | {EventType.THREAD_MESSAGE_CREATED}
# Events about agents and their runs also go to the dashboard-wide topic.
_DASHBOARD_TYPES = frozenset(
    {
        EventType.AGENT_CREATED,
        EventType.AGENT_UPDATED,
        EventType.AGENT_DELETED,
        EventType.RUN_CREATED,
        EventType.RUN_UPDATED,
    }
)


@dataclass(frozen=True)
class Event:
    """One event. `id` is its place in the event log; a stream event has none, and `seq`
    places it instead: after stored event `id_before` of its run, chunk number `seq`."""

    type: EventType
    data: dict[str, Any]
    id: int | None = None
    owner_id: int | None = None
    agent_id: int | None = None
    thread_id: int | None = None
    run_id: int | None = None
    seq: int = 0
    id_before: int = 0
    # Sent to the other processes by the transaction that stored it (`zerg.events.log`).
    notified: bool = field(default=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def topics(self) -> tuple[str, ...]:
        """Most specific first."""
        topics: list[str] = []
        if self.run_id is not None:
            topics.append(f"run:{self.run_id}")
        if self.thread_id is not None:
            topics.append(f"thread:{self.thread_id}")
        if self.agent_id is not None and self.type not in _THREAD_ONLY_TYPES:
            topics.append(f"agent:{self.agent_id}")
        if self.type in _DASHBOARD_TYPES:
            topics.append(AGENTS_TOPIC)
        return tuple(topics)

    @property
    def position(self) -> tuple[int, int]:
        """Where the event stands in its run's stream: stored events by id, stream events
        right after the stored event they followed."""
        if self.id is not None:
            return (self.id, 0)
        return (self.id_before, self.seq)

    @property
    def stream_id(self) -> str:
        """The id a client resumes from: `17` for a stored event, `17.3` for a stream event."""
        if self.id is not None:
            return str(self.id)
        return f"{self.id_before}.{self.seq}"

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` once per event and key (a frame serialized once for every subscriber)."""
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = make()
        return value


class Dropped(Exception):
    """The subscription fell too far behind and was dropped; `str()` says why."""


@dataclass(eq=False)
class Subscription:
    """Events of some topics, buffered (at most `limit`) on the subscriber's loop."""

    topics: set[str]
    loop: asyncio.AbstractEventLoop
    limit: int
    accept: Callable[[Event], bool] | None = None
    dropped: str | None = None
    # Called (on the subscriber's loop) when the subscription is dropped.
    on_drop: Callable[[], Any] | None = None
    _buffer: deque[Event] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    _bus: "EventBus | None" = None

    def _push(self, event: Event) -> None:
        """On the subscriber's loop."""
        if self.dropped is not None:
            return
        if self.accept is not None and not self.accept(event):
            return
        if len(self._buffer) >= self.limit:
            self.drop(f"fell {self.limit} events behind")
            return
        self._buffer.append(event)
        self._ready.set()

    def drop(self, reason: str) -> None:
        """Stop delivering; the subscriber's next `get` raises `Dropped(reason)`."""
        if self.dropped is None:
            self.dropped = reason
            self._buffer.clear()
            if self._bus is not None:
                self._bus.unsubscribe(self)
            if self.on_drop is not None:
                self.on_drop()
        self._ready.set()

    async def get(self) -> Event:
        """The next event; raises `Dropped` once the subscription was dropped."""
        while not self._buffer:
            if self.dropped is not None:
                raise Dropped(self.dropped)
            self._ready.clear()
            await self._ready.wait()
        return self._buffer.popleft()

    def get_nowait(self) -> Event | None:
        return self._buffer.popleft() if self._buffer else None


class EventBus:
    def __init__(self, buffer: int = DEFAULT_BUFFER) -> None:
        self.buffer = buffer
        self._by_topic: dict[str, set[Subscription]] = {}
        self._listeners: list[Callable[[Event], None]] = []
        self._relay: Callable[[Event], None] | None = None
        self._lock = threading.Lock()
        # Recently seen stored ids (to skip an event the relay's catch-up reads again) and
        # the latest runs' chat stream chunks (a reconnecting stream misses none).
        self._seen: deque[int] = deque(maxlen=50_000)
        self._seen_set: set[int] = set()
        self._chunks: dict[int, list[Event]] = {}  # run id -> its chunks, oldest run first
        self._chunk_count = 0
        self._ended: dict[int, float] = {}  # run id -> when its stream ended (monotonic)

    # -- subscribing -----------------------------------------------------------------------

    def subscribe(
        self,
        topics: Iterable[str],
        *,
        limit: int | None = None,
        accept: Callable[[Event], bool] | None = None,
    ) -> Subscription:
        """Subscribe the running event loop to `topics`; call `unsubscribe` when done.
        `accept` filters events further (e.g. to the ones the subscriber may see)."""
        subscription = Subscription(
            topics=set(),
            loop=asyncio.get_running_loop(),
            limit=limit or self.buffer,
            accept=accept,
        )
        subscription._bus = self
        self.add_topics(subscription, topics)
        return subscription

    def add_topics(self, subscription: Subscription, topics: Iterable[str]) -> None:
        with self._lock:
            if subscription.dropped is not None:
                return
            for topic in topics:
                subscription.topics.add(topic)
                self._by_topic.setdefault(topic, set()).add(subscription)

    def remove_topics(self, subscription: Subscription, topics: Iterable[str]) -> None:
        with self._lock:
            for topic in topics:
                subscription.topics.discard(topic)
                self._discard(topic, subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            for topic in subscription.topics:
                self._discard(topic, subscription)

    def _discard(self, topic: str, subscription: Subscription) -> None:
        subscribers = self._by_topic.get(topic)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._by_topic[topic]

    def subscriber_count(self) -> int:
        with self._lock:
            return len({s for subs in self._by_topic.values() for s in subs})

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """A plain callback run in the publisher's thread for every event; keep it fast."""
        with self._lock:
            self._listeners.append(listener)

    def set_relay(self, relay: Callable[[Event], None] | None) -> None:
        """Hand every event published here also to `relay` (which carries it to the other
        processes and delivers theirs with `deliver`); None: this process only."""
        self._relay = relay

    # -- publishing ------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Deliver an event here and in the other processes. A stored event is published
        only after the transaction that recorded it has committed."""
        self.deliver(event)
        relay = self._relay
        if relay is not None:
            relay(event)

    def publish_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.publish(event)

    def deliver(self, event: Event) -> bool:
        """Deliver an event to this process's subscribers and listeners only. False (and
        nothing delivered) for a stored event this bus has delivered already."""
        with self._lock:
            if event.id is not None:
                if event.id in self._seen_set:
                    return False
                if len(self._seen) == self._seen.maxlen:
                    self._seen_set.discard(self._seen[0])
                self._seen.append(event.id)
                self._seen_set.add(event.id)
            elif event.type == EventType.STREAM_CHUNK and event.run_id is not None:
                self._remember_chunk(event)
            elif event.type == EventType.STREAM_END and event.run_id is not None:
                self._ended[event.run_id] = time.monotonic()
                self._forget_old_chunks()
            targets: set[Subscription] = set()
            for topic in event.topics:
                subscribers = self._by_topic.get(topic)
                if subscribers:
                    targets.update(subscribers)
            listeners = list(self._listeners)
        if targets:
            self._hand_over(event, targets)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("event listener failed on %s", event.type)
        return True

    def _hand_over(self, event: Event, targets: set[Subscription]) -> None:
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
        for subscription in targets:
            by_loop.setdefault(subscription.loop, []).append(subscription)
        for loop, subscriptions in by_loop.items():
            if loop is here:
                _push_all(subscriptions, event)
                continue
            try:
                loop.call_soon_threadsafe(_push_all, subscriptions, event)
            except RuntimeError:  # the subscribers' loop has closed
                for subscription in subscriptions:
                    self.unsubscribe(subscription)

    def _remember_chunk(self, event: Event) -> None:
        """Keep a stream chunk (under the lock), letting go of ended and excess turns'."""
        assert event.run_id is not None
        self._chunks.setdefault(event.run_id, []).append(event)
        self._chunk_count += 1
        self._forget_old_chunks()

    def _forget_old_chunks(self) -> None:
        now = time.monotonic()
        while self._ended:
            run_id, ended_at = next(iter(self._ended.items()))
            if now - ended_at < _CHUNKS_KEPT_AFTER_END_S:
                break
            del self._ended[run_id]
            self._forget_chunks(run_id)
        while self._chunk_count > _MAX_KEPT_CHUNKS:
            self._forget_chunks(next(iter(self._chunks)))

    def _forget_chunks(self, run_id: int) -> None:
        self._chunk_count -= len(self._chunks.pop(run_id, ()))

    def recent_chunks(self, run_id: int) -> list[Event]:
        """The stream chunks of run `run_id` this process has seen (the latest runs only)."""
        with self._lock:
            return list(self._chunks.get(run_id, ()))


def _push_all(subscriptions: list[Subscription], event: Event) -> None:
    for subscription in subscriptions:
        subscription._push(event)
