"""The event bus across processes: two buses on one PostgreSQL database, as two processes, each
wired to its own engine as a process is (`connect_bus`)."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.support.waiting import wait_for
from zerg.db import Database
from zerg.events import Event, EventBus, EventType
from zerg.events.log import store
from zerg.events.postgres import PostgresRelay
from zerg.events.wiring import connect_bus
from zerg.settings import Settings


@dataclass
class Process:
    database: Database
    bus: EventBus
    relay: PostgresRelay

    def record(self, *events: Event) -> list[Event]:
        """Store events as a change does, and publish them once it has committed."""
        with self.database.transaction() as db:
            stored = store(db, list(events))
        self.bus.publish_all(stored)
        return stored


@pytest.fixture
def processes(pg_database_url: str) -> Iterator[tuple[Process, Process]]:
    pair = []
    for _ in range(2):
        settings = Settings(database_url=pg_database_url)
        database = Database(settings)
        bus, relay = connect_bus(settings, database)
        assert relay is not None
        relay.start()
        pair.append(Process(database, bus, relay))
    yield pair[0], pair[1]
    for process in pair:
        process.relay.stop()
        process.database.dispose()


def test_every_event_reaches_the_other_process_once_in_order(
    processes: tuple[Process, Process],
) -> None:
    here, there = processes
    seen_here: list[Event] = []
    seen_there: list[Event] = []
    here.bus.add_listener(seen_here.append)
    there.bus.add_listener(seen_there.append)
    # Bigger than a NOTIFY payload may be (8000 bytes): it travels in parts.
    big = {"id": 7, "role": "assistant", "content": "déjà vu " * 4000}
    stored = here.record(
        Event(EventType.RUN_UPDATED, {"id": 1, "status": "running"}, run_id=1, agent_id=3),
        Event(EventType.THREAD_MESSAGE_CREATED, big, thread_id=5, run_id=1),
    )
    stored += here.record(Event(EventType.AGENT_UPDATED, {"id": 3, "status": "idle"}, agent_id=3))
    # A chat stream chunk: never stored, placed after the message.
    chunk = Event(
        EventType.STREAM_CHUNK,
        {"content": "déjà"},
        owner_id=4,
        thread_id=5,
        run_id=1,
        seq=2,
        id_before=stored[1].id or 0,
    )
    here.bus.publish(chunk)
    sent = [*stored, chunk]

    wait_for(lambda: len(seen_there) == len(sent), timeout_s=5)
    assert seen_there == sent
    time.sleep(0.3)
    assert seen_here == sent  # delivered here once, not again from the database


def test_events_stored_to_keep_their_order_with_a_stream_travel_with_it(
    processes: tuple[Process, Process],
) -> None:
    """A chat turn's stored events go out as they are published, between its stream chunks,
    not when their transaction commits (which could pass chunks still on their way)."""
    here, there = processes
    seen_there: list[Event] = []
    there.bus.add_listener(seen_there.append)

    def chunk(seq: int, id_before: int) -> Event:
        data = {"chunk_type": "assistant_token", "content": f"token {seq}"}
        return Event(
            EventType.STREAM_CHUNK, data, thread_id=5, run_id=1, seq=seq, id_before=id_before
        )

    first = chunk(1, 0)
    here.bus.publish(first)
    with here.database.transaction() as db:
        answer = Event(EventType.THREAD_MESSAGE_CREATED, {"id": 8}, thread_id=5, run_id=1)
        [message] = store(db, [answer], notify=False)
    here.bus.publish(message)
    last = chunk(2, message.id or 0)
    here.bus.publish(last)

    wait_for(lambda: len(seen_there) == 3, timeout_s=5)
    assert seen_there == [first, message, last]


def test_a_rolled_back_change_sends_nothing(processes: tuple[Process, Process]) -> None:
    """A stored event goes out with its transaction's commit, and never without it."""
    here, there = processes
    seen_there: list[Event] = []
    there.bus.add_listener(seen_there.append)
    with pytest.raises(RuntimeError), here.database.transaction() as db:
        store(db, [Event(EventType.AGENT_UPDATED, {"id": 1, "status": "running"}, agent_id=1)])
        raise RuntimeError("the change failed")
    idle = Event(EventType.AGENT_UPDATED, {"id": 2, "status": "idle"}, agent_id=2)
    [committed] = here.record(idle)

    wait_for(lambda: len(seen_there) >= 1, timeout_s=5)
    time.sleep(0.3)
    assert seen_there == [committed]


def test_events_stored_by_a_process_without_a_bus_reach_the_others(
    processes: tuple[Process, Process], pg_database_url: str
) -> None:
    """A command that changes the database directly (no relay of its own) is heard too."""
    _, there = processes
    seen_there: list[Event] = []
    there.bus.add_listener(seen_there.append)
    command = Database(Settings(database_url=pg_database_url))
    try:
        with command.transaction() as db:
            [stored] = store(db, [Event(EventType.AGENT_DELETED, {"id": 9}, agent_id=9)])
    finally:
        command.dispose()

    wait_for(lambda: seen_there == [stored], timeout_s=5)


def test_a_runs_events_commit_in_id_order(processes: tuple[Process, Process]) -> None:
    """A follower that resumes after an event's id misses nothing: a run's event waits for
    the run's earlier ones to commit before it gets its id. Other runs' events do not wait."""
    here, there = processes

    def event(run_id: int) -> Event:
        return Event(EventType.RUN_UPDATED, {"id": run_id}, agent_id=1, run_id=run_id)

    later: list[Event] = []
    with here.database.transaction() as db:
        [first] = store(db, [event(1)])
        with ThreadPoolExecutor(2) as pool:
            same_run = pool.submit(lambda: there.record(event(1), event(2)))
            [other_run] = pool.submit(lambda: there.record(event(3))).result(timeout=10)
            time.sleep(0.3)
            assert not same_run.done()  # waits for the first event's transaction
            db.commit()
            later = same_run.result(timeout=10)
    assert other_run.id is not None and first.id is not None
    assert [e.id for e in later] == sorted(e.id or 0 for e in later)
    assert all((e.id or 0) > other_run.id > first.id for e in later)


@pytest.mark.anyio
async def test_a_subscriber_on_an_event_loop_gets_the_other_process_events(
    processes: tuple[Process, Process],
) -> None:
    here, there = processes
    subscription = there.bus.subscribe(
        ["agent:2"], accept=lambda e: e.type == EventType.AGENT_UPDATED
    )
    here.record(Event(EventType.RUN_CREATED, {"id": 1}, agent_id=2, run_id=1))
    here.record(Event(EventType.AGENT_UPDATED, {"id": 1}, agent_id=1))
    [sent] = here.record(Event(EventType.AGENT_UPDATED, {"id": 2, "status": "running"}, agent_id=2))
    assert await subscription.get() == sent
