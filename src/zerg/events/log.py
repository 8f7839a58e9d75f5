"""The event log: an event is recorded in the transaction of the change it describes, which
gives it its id, and published once that transaction has committed.

Two ways to publish after the commit:
- the run path (Core connections) keeps what `store` returns and publishes it after its
  `with database.transaction()` block;
- services on an ORM `Session` call `record_in_session`: the events go out when that session
  commits (and are forgotten if it rolls back), whoever commits it.

On PostgreSQL the events of one run are recorded under a transaction lock on the run, so they
commit in id order: a client that resumes after id N misses nothing committed later with a
smaller id. The transaction also NOTIFYs them to the other processes (`zerg.events.wire`): they
go out when it commits, and never if it rolls back (a chat turn's go out with its tokens, see
`store`).
"""

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, event, insert, select, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from zerg import clock
from zerg.events.bus import Event, EventBus, EventType
from zerg.events.wire import CHANNEL, NOTIFY_ALL, ORIGIN_OPTION, after_id, encode, fits, up_to_id
from zerg.models import events_table

_e = events_table.c
_INSERT_PLAIN = insert(events_table)
_LAST_ROWID = text("SELECT last_insert_rowid()")
_RUN_EVENTS = (
    select(events_table)
    .where(_e.run_id == bindparam("run_id"), _e.id > bindparam("after"))
    .order_by(_e.id)
)
_SINCE = select(events_table).where(_e.created_at >= bindparam("since")).order_by(_e.id)
# The advisory lock space of run event ordering ("zerg" in ASCII).
_LOCK_SPACE = 0x7A657267
# PostgreSQL, in one statement: the rows in the order given, once the transaction holds the
# lock of each of their runs (the one-time filter is evaluated before any row gets its id),
# so that a run's events commit in id order; then each row's NOTIFY, in the same order, when
# its payload's rest is given. Parameters: the time, the columns as arrays, the lock space,
# the runs to lock (sorted), the channel, each payload's start (`up_to_id`) and rest
# (`after_id`).
# The arrays go in binary (`%b`): in text, psycopg escapes each quote of each JSON element
# with a regular expression, which cost more than the rest of the statement.
_STORE = """
    WITH stored AS (
        INSERT INTO events (type, owner_id, agent_id, thread_id, run_id, data, created_at)
        SELECT e.type, e.owner_id, e.agent_id, e.thread_id, e.run_id, e.data::jsonb, %s
        FROM unnest(%b::text[], %b::int[], %b::int[], %b::int[], %b::int[], %b::text[])
            WITH ORDINALITY AS e(type, owner_id, agent_id, thread_id, run_id, data, n)
        WHERE (
            SELECT count(*) FROM (
                SELECT pg_advisory_xact_lock(%s, run) FROM unnest(%b::int[]) AS run
            ) AS locked
        ) >= 0
        ORDER BY e.n
        RETURNING id
    ),
    numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM stored)
    SELECT numbered.id,
        CASE WHEN rest.payload IS NOT NULL
            THEN pg_notify(%s, %s || numbered.id || rest.payload) END
    FROM numbered JOIN unnest(%b::text[]) WITH ORDINALITY AS rest(payload, n) USING (n)
    ORDER BY numbered.id
"""
_PENDING = "zerg_pending_events"
_MARKS = "zerg_event_marks"  # savepoint -> how many events were pending when it began


def store(db: Connection, events: Sequence[Event], *, notify: bool = True) -> list[Event]:
    """Store events (given without ids) in the caller's transaction, in one statement; returns
    them with their ids, to publish after commit.

    On PostgreSQL the same statement also sends them to the other processes (`notify`),
    unless they must keep their order with events never stored (a chat turn's, with its
    tokens): then the relay sends them when they are published, in order with those."""
    if db.dialect.name == "postgresql":
        return _store_postgres(db, events, notify)
    now = clock.now()
    rows = [
        {
            "type": e.type.value,
            "owner_id": e.owner_id,
            "agent_id": e.agent_id,
            "thread_id": e.thread_id,
            "run_id": e.run_id,
            "data": e.data,
            "created_at": now,
        }
        for e in events
    ]
    # One writer at a time holds SQLite's write lock, and AUTOINCREMENT ids only grow: the
    # rows of one statement get consecutive ids, the last one SQLite reports. (A plain INSERT
    # costs a third less than one with RETURNING on this path.)
    if len(rows) == 1:
        last = db.execute(_INSERT_PLAIN, rows[0]).lastrowid
    else:
        db.execute(_INSERT_PLAIN, rows)
        last = db.execute(_LAST_ROWID).scalar_one()
    ids = range(last - len(rows) + 1, last + 1)
    return [_with_id(e, event_id, notified=False) for e, event_id in zip(events, ids, strict=True)]


def _store_postgres(db: Connection, events: Sequence[Event], notify: bool) -> list[Event]:
    """One round trip: the run locks, the rows and their NOTIFYs (`_STORE`)."""
    data = [json.dumps(e.data) for e in events]
    origin = db.get_execution_options().get(ORIGIN_OPTION, "")
    start = up_to_id(origin)
    rests: list[str | None] = [None] * len(events)
    if notify:
        rests = [after_id(e, d) for e, d in zip(events, data, strict=True)]
    # Events too large for one NOTIFY go out in parts, once their ids are known, after the
    # statement (rare: a long message); the others then go with them, in order.
    in_parts = notify and not all(fits(start, rest) for rest in rests if rest is not None)
    if in_parts:
        rests = [None] * len(events)
    params = (
        clock.now(),
        [e.type.value for e in events],
        [e.owner_id for e in events],
        [e.agent_id for e in events],
        [e.thread_id for e in events],
        [e.run_id for e in events],
        data,
        _LOCK_SPACE,
        sorted({e.run_id for e in events if e.run_id is not None}),
        CHANNEL,
        start,
        rests,
    )
    ids = [row[0] for row in db.exec_driver_sql(_STORE, params)]
    stored = [_with_id(e, i, notified=notify) for e, i in zip(events, ids, strict=True)]
    if in_parts:
        payloads = [payload for event in stored for payload in encode(event, origin)]
        db.exec_driver_sql(NOTIFY_ALL, (CHANNEL, payloads))
    return stored


def _with_id(event: Event, event_id: int, *, notified: bool) -> Event:
    return Event(
        event.type,
        event.data,
        event_id,
        event.owner_id,
        event.agent_id,
        event.thread_id,
        event.run_id,
        notified=notified,
    )


def record_in_session(
    session: Session,
    type: EventType,
    data: dict[str, Any],
    *,
    owner_id: int | None,
    agent_id: int | None = None,
    thread_id: int | None = None,
    run_id: int | None = None,
) -> Event:
    """Store an event in the session's transaction; it is published when the session commits
    (see `publish_on_commit`)."""
    event = Event(
        type, data, owner_id=owner_id, agent_id=agent_id, thread_id=thread_id, run_id=run_id
    )
    [recorded] = store(session.connection(), [event])
    session.info.setdefault(_PENDING, []).append(recorded)
    return recorded


def publish_on_commit(factory: sessionmaker[Session], bus: EventBus) -> Callable[[], None]:
    """Publish the events a session recorded once it commits; drop them when it rolls back.
    Returns a function that undoes this."""

    def after_commit(session: Session) -> None:
        pending: list[Event] = session.info.pop(_PENDING, [])
        bus.publish_all(pending)

    def after_transaction_create(session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:  # a savepoint: what it records goes if it rolls back
            marks = session.info.setdefault(_MARKS, {})
            marks[transaction] = len(session.info.get(_PENDING, ()))

    def after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
        mark = session.info.get(_MARKS, {}).get(previous)
        if previous.nested and mark is not None:
            del session.info.get(_PENDING, [])[mark:]

    def after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # rolled back or closed: never committed
            session.info.pop(_PENDING, None)
            session.info.pop(_MARKS, None)

    listeners: dict[str, Callable[..., None]] = {
        "after_commit": after_commit,
        "after_transaction_create": after_transaction_create,
        "after_soft_rollback": after_soft_rollback,
        "after_transaction_end": after_transaction_end,
    }
    for name, listener in listeners.items():
        event.listen(factory, name, listener)

    def undo() -> None:
        for name, listener in listeners.items():
            event.remove(factory, name, listener)

    return undo


def _from_row(row: Any) -> Event:
    return Event(
        EventType(row.type),
        row.data,
        id=row.id,
        owner_id=row.owner_id,
        agent_id=row.agent_id,
        thread_id=row.thread_id,
        run_id=row.run_id,
    )


def run_events(db: Connection, run_id: int, after: int = 0) -> list[Event]:
    """Run `run_id`'s stored events with ids above `after`, in order."""
    return [_from_row(row) for row in db.execute(_RUN_EVENTS, {"run_id": run_id, "after": after})]


def events_since(db: Connection, since: datetime) -> Sequence[Event]:
    """Every event recorded at or after `since`, in id order (the relay's catch-up)."""
    return [_from_row(row) for row in db.execute(_SINCE, {"since": since})]


def prune(db: Connection, before: datetime) -> int:
    """Delete the events recorded before `before`; returns how many."""
    result = db.execute(delete(events_table).where(_e.created_at < before))
    return int(result.rowcount or 0)
