"""The event bus across processes: two buses on one PostgreSQL database, as two processes."""

import time
from collections.abc import Iterator

import pytest

from tests.support.waiting import wait_for
from zerg.events import Event, EventBus, EventType
from zerg.events.postgres import PostgresRelay


@pytest.fixture
def buses(pg_database_url: str) -> Iterator[tuple[EventBus, EventBus]]:
    pair = (EventBus(), EventBus())
    relays = [PostgresRelay(bus, pg_database_url) for bus in pair]
    for relay in relays:
        relay.start()
    yield pair
    for relay in relays:
        relay.stop()


def test_every_event_reaches_the_other_process_once_in_order(
    buses: tuple[EventBus, EventBus],
) -> None:
    here, there = buses
    seen_here: list[Event] = []
    seen_there: list[Event] = []
    here.add_listener(seen_here.append)
    there.add_listener(seen_there.append)
    # Bigger than a NOTIFY payload may be (8000 bytes): it travels in parts.
    big = {"id": 7, "role": "assistant", "content": "déjà vu " * 4000}
    sent = [
        Event(EventType.RUN_UPDATED, {"id": 1, "status": "running"}),
        Event(EventType.THREAD_MESSAGE_CREATED, big),
        Event(EventType.AGENT_UPDATED, {"id": 3, "status": "idle"}),
    ]
    for event in sent:
        here.publish(event.type, event.data)

    wait_for(lambda: len(seen_there) == len(sent), timeout_s=5)
    assert seen_there == sent
    time.sleep(0.3)
    assert seen_here == sent  # delivered here once, not again from the database


@pytest.mark.anyio
async def test_a_subscriber_on_an_event_loop_gets_the_other_process_events(
    buses: tuple[EventBus, EventBus],
) -> None:
    here, there = buses
    subscription = there.subscribe(lambda e: e.type == EventType.AGENT_UPDATED)
    here.publish(EventType.RUN_CREATED, {"id": 1})
    here.publish(EventType.AGENT_UPDATED, {"id": 2, "status": "running"})
    event = await subscription.get()
    assert event == Event(EventType.AGENT_UPDATED, {"id": 2, "status": "running"})
