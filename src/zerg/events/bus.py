"""An in-process event bus that any thread may publish to and any event loop may consume.

Runs execute on whichever event loop or thread the run engine uses, while subscribers (an HTTP
request waiting for its run, later the WebSocket hub) live on the server's loop, so delivery goes
through `call_soon_threadsafe` into each subscriber's own asyncio queue.
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Event:
    type: EventType
    data: dict[str, Any]


Predicate = Callable[[Event], bool]


@dataclass(eq=False)
class Subscription:
    """Events matching `predicate`, delivered into an asyncio queue on the subscriber's loop."""

    predicate: Predicate
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)

    async def get(self) -> Event:
        return await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._relay: Callable[[Event], None] | None = None
        self._lock = threading.Lock()

    def subscribe(self, predicate: Predicate = lambda _event: True) -> Subscription:
        """Subscribe the running event loop; call `unsubscribe` when done."""
        subscription = Subscription(predicate=predicate, loop=asyncio.get_running_loop())
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """A plain callback run in the publisher's thread (for tests and bridges); keep it fast."""
        with self._lock:
            self._listeners.append(listener)

    def set_relay(self, relay: Callable[[Event], None] | None) -> None:
        """Hand every event published here also to `relay` (which carries it to the other
        processes and delivers theirs with `deliver`); None: this process only."""
        self._relay = relay

    def publish(self, type: EventType, data: dict[str, Any]) -> None:
        """Deliver an event; call it only after the transaction it describes has committed."""
        event = Event(type, data)
        self.deliver(event)
        relay = self._relay
        if relay is not None:
            relay(event)

    def deliver(self, event: Event) -> None:
        """Deliver an event to this process's subscribers and listeners only."""
        with self._lock:
            subscriptions = [s for s in self._subscriptions if s.predicate(event)]
            listeners = list(self._listeners)
        for subscription in subscriptions:
            try:
                subscription.loop.call_soon_threadsafe(subscription.queue.put_nowait, event)
            except RuntimeError:  # the subscriber's loop has closed
                self.unsubscribe(subscription)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("event listener failed on %s", event.type)
