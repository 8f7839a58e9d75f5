"""The event layer on its own: routing by topic, bounded subscriber buffers, delivery across
threads, stored ids published after their commit, the relay's duplicate skipping, and pruning
of the event log."""

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.helpers import T0, FrozenClock
from zerg.db import Database
from zerg.events import AGENTS_TOPIC, Dropped, Event, EventBus, EventType, Subscription
from zerg.events import bus as bus_module
from zerg.events.log import publish_on_commit, record_in_session, run_events, store
from zerg.models import Agent, events_table
from zerg.services.task_runs import TaskRuns
from zerg.settings import Settings

# The longest wait for an event that should arrive: a lost one fails the test, not hangs it.
WAIT_S = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def agent_updated(agent_id: int, n: int = 0) -> Event:
    return Event(EventType.AGENT_UPDATED, {"id": agent_id, "n": n}, agent_id=agent_id)


def message_created(agent_id: int, thread_id: int, run_id: int | None, n: int = 0) -> Event:
    return Event(
        EventType.THREAD_MESSAGE_CREATED,
        {"id": n, "role": "assistant"},
        agent_id=agent_id,
        thread_id=thread_id,
        run_id=run_id,
    )


def chunk(run_id: int, seq: int, thread_id: int = 5, agent_id: int = 1) -> Event:
    return Event(
        EventType.STREAM_CHUNK,
        {"chunk_type": "assistant_token", "content": f"t{seq}"},
        agent_id=agent_id,
        thread_id=thread_id,
        run_id=run_id,
        seq=seq,
    )


def drain(subscription: Subscription) -> list[Event]:
    """What the subscription holds right now."""
    events: list[Event] = []
    while (event := subscription.get_nowait()) is not None:
        events.append(event)
    return events


async def receive(subscription: Subscription, count: int) -> list[Event]:
    async with asyncio.timeout(WAIT_S):
        return [await subscription.get() for _ in range(count)]


# -- routing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "topics"),
    [
        (agent_updated(1), ("agent:1", AGENTS_TOPIC)),
        (Event(EventType.AGENT_CREATED, {}, agent_id=2), ("agent:2", AGENTS_TOPIC)),
        (Event(EventType.AGENT_DELETED, {}, agent_id=2), ("agent:2", AGENTS_TOPIC)),
        # A task run before its thread exists, and once it has one.
        (Event(EventType.RUN_CREATED, {}, agent_id=1, run_id=9), ("run:9", "agent:1", "agents")),
        (
            Event(EventType.RUN_UPDATED, {}, agent_id=1, thread_id=5, run_id=9),
            ("run:9", "thread:5", "agent:1", AGENTS_TOPIC),
        ),
        (
            Event(EventType.THREAD_CREATED, {}, agent_id=1, thread_id=5, run_id=9),
            ("run:9", "thread:5", "agent:1"),
        ),
        # A thread's messages and chat stream stay off the agent's and the dashboard's topics.
        (message_created(1, 5, 9), ("run:9", "thread:5")),
        (message_created(1, 5, None), ("thread:5",)),
        (chunk(9, 1), ("run:9", "thread:5")),
        (
            Event(EventType.STREAM_START, {}, agent_id=1, thread_id=5, run_id=9),
            ("run:9", "thread:5"),
        ),
        (Event(EventType.STREAM_END, {}, agent_id=1, thread_id=5, run_id=9), ("run:9", "thread:5")),
    ],
    ids=lambda value: value.type.value if isinstance(value, Event) else None,
)
def test_each_event_goes_to_the_topics_of_what_it_is_about(
    event: Event, topics: tuple[str, ...]
) -> None:
    assert event.topics == topics


@pytest.mark.anyio
async def test_a_publish_reaches_only_the_subscribers_of_its_topics() -> None:
    bus = EventBus()
    agent_1 = bus.subscribe(["agent:1"])
    agent_2 = bus.subscribe(["agent:2"])
    dashboard = bus.subscribe([AGENTS_TOPIC])
    thread_5 = bus.subscribe(["thread:5"])
    run_9 = bus.subscribe(["run:9"])
    # Two topics of one event: delivered once to a subscriber of both.
    both = bus.subscribe(["agent:1", "run:9"])
    first, second = agent_updated(1), agent_updated(2)
    run = Event(EventType.RUN_CREATED, {"id": 9}, agent_id=1, run_id=9)
    message = message_created(1, 5, 9)
    token = chunk(9, 1)
    other_thread = Event(EventType.THREAD_CREATED, {"id": 6}, agent_id=2, thread_id=6)

    for event in (first, second, run, message, token, other_thread):
        bus.publish(event)

    assert drain(agent_1) == [first, run]
    assert drain(agent_2) == [second, other_thread]
    assert drain(dashboard) == [first, second, run]
    assert drain(thread_5) == [message, token]
    assert drain(run_9) == [run, message, token]
    assert drain(both) == [first, run, message, token]


@pytest.mark.anyio
async def test_an_unsubscribed_topic_gets_nothing_more() -> None:
    bus = EventBus()
    subscription = bus.subscribe(["agent:1", "agent:2"])
    bus.remove_topics(subscription, ["agent:1"])
    kept = agent_updated(2)
    bus.publish(agent_updated(1))
    bus.publish(kept)
    assert drain(subscription) == [kept]

    bus.unsubscribe(subscription)
    bus.publish(agent_updated(2, n=1))
    assert drain(subscription) == []
    assert bus.subscriber_count() == 0


# -- bounded buffers and threads -------------------------------------------------------------


@pytest.mark.anyio
async def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_get_everything() -> None:
    bus = EventBus()
    slow = bus.subscribe(["agent:1"], limit=3)
    told: list[str | None] = []
    slow.on_drop = lambda: told.append(slow.dropped)
    reader = bus.subscribe(["agent:1"])
    events = [agent_updated(1, n) for n in range(5)]

    for event in events:
        bus.publish(event)

    assert drain(reader) == events
    with pytest.raises(Dropped, match="fell 3 events behind"):
        await slow.get()
    assert told == ["fell 3 events behind"]
    # Dropped for good: out of the bus, and later events go to the others only.
    assert bus.subscriber_count() == 1
    later = agent_updated(1, 99)
    bus.publish(later)
    assert drain(reader) == [later]
    with pytest.raises(Dropped):
        await slow.get()


@pytest.mark.anyio
async def test_a_subscriber_that_keeps_up_is_never_dropped() -> None:
    bus = EventBus()
    subscription = bus.subscribe(["agent:1"], limit=2)
    for n in range(50):
        event = agent_updated(1, n)
        bus.publish(event)
        assert await receive(subscription, 1) == [event]
    assert subscription.dropped is None


@pytest.mark.anyio
async def test_events_published_in_another_thread_reach_the_loop_in_order() -> None:
    bus = EventBus()
    subscription = bus.subscribe(["run:7"], limit=10_000)
    events = [Event(EventType.RUN_UPDATED, {"n": n}, agent_id=1, run_id=7) for n in range(300)]
    publisher = threading.Thread(target=bus.publish_all, args=(events,))

    publisher.start()
    received = await receive(subscription, len(events))
    publisher.join()

    assert received == events


@pytest.mark.anyio
async def test_one_publish_reaches_subscribers_on_two_event_loops() -> None:
    bus = EventBus()
    here = bus.subscribe(["agent:1"])
    subscribed = threading.Event()
    received_there: list[Event] = []

    async def other_loop() -> None:
        there = bus.subscribe(["agent:1"])
        subscribed.set()
        received_there.extend(await receive(there, 3))

    thread = threading.Thread(target=asyncio.run, args=(other_loop(),))
    thread.start()
    assert await asyncio.to_thread(subscribed.wait, WAIT_S)
    events = [agent_updated(1, n) for n in range(3)]
    # From a third thread: neither subscriber's loop.
    await asyncio.to_thread(bus.publish_all, events)

    assert await receive(here, 3) == events
    await asyncio.to_thread(thread.join, WAIT_S)
    assert received_there == events


# -- ids, storage and commit -----------------------------------------------------------------


def test_agent_events_are_stored_with_increasing_ids_and_published_after_their_commit(
    client: httpx.Client, app: FastAPI, database: Database
) -> None:
    published: list[tuple[Event, str | None]] = []

    def listen(event: Event) -> None:
        # Whoever hears an event and reads the database sees the change it announces.
        with database.session() as session:
            agent = session.get(Agent, event.data["id"])
            published.append((event, None if agent is None else agent.name))

    app.state.bus.add_listener(listen)
    created = client.post("/api/agents", json={"name": "first", "model": "scripted:echo"})
    assert created.status_code == 201, created.text
    agent_id = created.json()["id"]
    updated = client.patch(f"/api/agents/{agent_id}", json={"name": "second"})
    assert updated.status_code == 200, updated.text
    assert client.delete(f"/api/agents/{agent_id}").status_code == 204

    assert [(event.type, name) for event, name in published] == [
        (EventType.AGENT_CREATED, "first"),
        (EventType.AGENT_UPDATED, "second"),
        (EventType.AGENT_DELETED, None),
    ]
    events = [event for event, _ in published]
    ids = [event.id for event in events if event.id is not None]
    assert len(ids) == len(events)
    assert ids == sorted(set(ids))
    with database.transaction() as db:
        rows = db.execute(
            select(events_table).where(events_table.c.agent_id == agent_id).order_by("id")
        ).all()
    assert [(row.id, row.type, row.agent_id, row.data) for row in rows] == [
        (event.id, event.type.value, agent_id, event.data) for event in events
    ]


@pytest.fixture
def session_bus(database: Database) -> Iterator[tuple[EventBus, list[Event]]]:
    """A bus that publishes what the database's sessions record, and what it published."""
    bus = EventBus()
    published: list[Event] = []
    bus.add_listener(published.append)
    undo = publish_on_commit(database.sessionmaker, bus)
    yield bus, published
    undo()


def stored_ids(database: Database) -> list[int]:
    with database.transaction() as db:
        return list(db.scalars(select(events_table.c.id).order_by(events_table.c.id)))


def record_agent_event(session: Session, agent_id: int) -> Event:
    return record_in_session(
        session, EventType.AGENT_UPDATED, {"id": agent_id}, owner_id=None, agent_id=agent_id
    )


def test_a_session_publishes_its_events_when_it_commits_and_never_on_rollback(
    database: Database, session_bus: tuple[EventBus, list[Event]]
) -> None:
    _, published = session_bus
    before = stored_ids(database)
    with database.session() as session:
        record_agent_event(session, 1)
        session.rollback()
    with database.session() as session:
        record_agent_event(session, 2)  # closed without a commit
    with database.session() as session:
        record_agent_event(session, 3)
        session.rollback()
        session.commit()  # a later commit does not bring back what was rolled back
    assert published == []
    assert stored_ids(database) == before

    with database.session() as session:
        first = record_agent_event(session, 4)
        second = record_agent_event(session, 5)
        assert published == []  # recorded, not yet committed
        session.commit()

    assert published == [first, second]
    assert first.id is not None and second.id is not None and first.id < second.id
    assert stored_ids(database) == [*before, first.id, second.id]


def test_events_recorded_in_a_rolled_back_savepoint_are_not_published(
    database: Database, session_bus: tuple[EventBus, list[Event]]
) -> None:
    _, published = session_bus
    with database.session() as session:
        kept = record_agent_event(session, 1)
        savepoint = session.begin_nested()
        record_agent_event(session, 2)
        savepoint.rollback()
        session.commit()

    assert kept.id is not None
    assert stored_ids(database)[-1:] == [kept.id]
    assert published == [kept]


@pytest.mark.anyio
async def test_deliver_skips_a_stored_event_it_has_delivered_already() -> None:
    """The relay's catch-up reads back events this process may have had live: each stored id
    reaches the subscribers once."""
    bus = EventBus()
    subscription = bus.subscribe(["run:3"])
    listened: list[Event] = []
    bus.add_listener(listened.append)
    stored = Event(EventType.RUN_UPDATED, {"status": "running"}, id=41, agent_id=1, run_id=3)
    again = Event(EventType.RUN_UPDATED, {"status": "running"}, id=41, agent_id=1, run_id=3)
    later = Event(EventType.RUN_UPDATED, {"status": "succeeded"}, id=42, agent_id=1, run_id=3)
    token = chunk(3, 1)

    assert bus.deliver(stored) is True
    assert bus.deliver(again) is False
    bus.publish(again)
    # Stream events have no id: each one is new.
    assert bus.deliver(token) is True
    assert bus.deliver(token) is True
    assert bus.deliver(later) is True

    assert drain(subscription) == [stored, token, token, later]
    assert listened == [stored, token, token, later]


@pytest.mark.anyio
async def test_the_bus_keeps_each_runs_stream_chunks_for_a_reconnecting_stream() -> None:
    bus = EventBus()
    chunks = [chunk(5, seq) for seq in (1, 2, 3)]
    bus.publish(Event(EventType.STREAM_START, {}, agent_id=1, thread_id=5, run_id=5, seq=0))
    bus.publish(chunks[0])
    bus.publish(chunk(6, 1))
    bus.publish_all(chunks[1:])
    bus.publish(Event(EventType.STREAM_END, {}, agent_id=1, thread_id=5, run_id=5, seq=4))

    assert bus.recent_chunks(5) == chunks
    assert bus.recent_chunks(6) == [chunk(6, 1)]
    assert bus.recent_chunks(7) == []


def test_a_turns_chunks_are_let_go_a_while_after_it_ended_and_in_all_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(bus_module.time, "monotonic", lambda: now[0])
    bus = EventBus()
    bus.publish_all([chunk(5, 1), chunk(5, 2), chunk(6, 1)])
    bus.publish(Event(EventType.STREAM_END, {}, agent_id=1, thread_id=5, run_id=5, seq=3))

    now[0] += bus_module._CHUNKS_KEPT_AFTER_END_S - 1
    bus.publish(chunk(6, 2))
    assert bus.recent_chunks(5) == [chunk(5, 1), chunk(5, 2)]  # a reconnect may still want them

    now[0] += 2
    bus.publish(chunk(6, 3))
    assert bus.recent_chunks(5) == []  # the stored messages stand for them now
    assert bus.recent_chunks(6) == [chunk(6, 1), chunk(6, 2), chunk(6, 3)]  # still streaming

    monkeypatch.setattr(bus_module, "_MAX_KEPT_CHUNKS", 4)
    bus.publish_all([chunk(7, 1), chunk(7, 2)])
    assert bus.recent_chunks(6) == []  # the oldest turn's go first
    assert bus.recent_chunks(7) == [chunk(7, 1), chunk(7, 2)]


def test_a_runs_stored_events_read_back_in_id_order(database: Database) -> None:
    with database.transaction() as db:
        recorded = [
            store(db, [Event(EventType.RUN_UPDATED, {"n": n}, agent_id=1, run_id=run_id)])[0]
            for n, run_id in enumerate((8, 9, 8, 8))
        ]
    with database.transaction() as db:
        everything = run_events(db, 8)
        after_first = run_events(db, 8, after=everything[0].id or 0)

    ours = [event for event in recorded if event.run_id == 8]
    assert everything == ours
    assert after_first == ours[1:]


# -- pruning ---------------------------------------------------------------------------------


def test_pruning_forgets_the_events_older_than_the_retention(
    settings: Settings, database: Database, clock: FrozenClock
) -> None:
    retention = timedelta(days=settings.event_retention_days)
    task_runs = TaskRuns(settings, database, EventBus())

    def record_now() -> int:
        with database.transaction() as db:
            [event] = store(db, [Event(EventType.AGENT_UPDATED, {"id": 1}, agent_id=1)])
        assert event.id is not None
        return event.id

    assert stored_ids(database) == []  # a fresh database
    oldest = record_now()
    clock.advance(hours=1)
    older = record_now()
    clock.now = T0 + retention - timedelta(seconds=1)
    newest = record_now()

    # Exactly `retention` after `older` was recorded: it is that old, not older.
    clock.now = T0 + retention + timedelta(hours=1)
    assert task_runs.prune_events() == 1
    assert stored_ids(database) == [older, newest]

    clock.advance(seconds=1)
    assert task_runs.prune_events() == 1
    assert stored_ids(database) == [newest]
    assert oldest < older < newest
