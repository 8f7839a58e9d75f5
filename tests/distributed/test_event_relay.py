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
        Event(EventType.RUN_UPDATED, {"id": 1, "status": "running"}, id=11, run_id=1, agent_id=3),
        Event(EventType.THREAD_MESSAGE_CREATED, big, id=12, thread_id=5, run_id=1),
        Event(EventType.AGENT_UPDATED, {"id": 3, "status": "idle"}, id=13, agent_id=3),
        # A chat stream chunk: no stored id, placed after event 12.
        Event(
            EventType.STREAM_CHUNK,
            {"content": "déjà"},
            owner_id=4,
            thread_id=5,
            run_id=1,
            seq=2,
            id_before=12,
        ),
    ]
    for event in sent:
        here.publish(event)

    wait_for(lambda: len(seen_there) == len(sent), timeout_s=5)
    assert seen_there == sent
    time.sleep(0.3)
    assert seen_here == sent  # delivered here once, not again from the database


@pytest.mark.anyio
async def test_a_subscriber_on_an_event_loop_gets_the_other_process_events(
    buses: tuple[EventBus, EventBus],
) -> None:
    here, there = buses
    subscription = there.subscribe(["agent:2"], accept=lambda e: e.type == EventType.AGENT_UPDATED)
    here.publish(Event(EventType.RUN_CREATED, {"id": 1}, id=1, agent_id=2, run_id=1))
    here.publish(Event(EventType.AGENT_UPDATED, {"id": 1}, id=2, agent_id=1))
    sent = Event(EventType.AGENT_UPDATED, {"id": 2, "status": "running"}, id=3, agent_id=2)
    here.publish(sent)
    assert await subscription.get() == sent
