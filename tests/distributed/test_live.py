"""Live updates across processes: a run executing on a worker reaches WebSocket and
Server-Sent Events clients of any API replica, a chat turn's tokens arrive as they are
produced, and a replica that lost its LISTEN connection fills the gap from the event log.

Real clients (websockets, httpx-sse) against real `zerg serve --no-execute` replicas and
`zerg worker` processes on one PostgreSQL database (the `cluster` fixture)."""

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from httpx_sse import connect_sse
from sqlalchemy import select
from sqlalchemy.engine import make_url
from websockets.sync.client import ClientConnection, connect

from tests.api.test_ws import receive_until as receive_within
from tests.distributed.conftest import Cluster
from tests.support.openai_server import FakeOpenAI, Hang, Text, ToolCall
from tests.support.waiting import wait_for
from zerg.events.postgres import libpq_url
from zerg.models import Run, events_table

Message = dict[str, Any]
# The longest wait for something expected: a lost event fails the test instead of hanging it.
WAIT_S = 20.0


def receive_until(
    ws: ClientConnection, done: Callable[[Message], bool], what: str
) -> list[Message]:
    """`receive_until` with this file's longer wait (processes share the machine)."""
    return receive_within(ws, done, what, WAIT_S)


REPLIES = frozenset({"subscribed", "unsubscribed", "pong", "error"})
FINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})


# -- clients ---------------------------------------------------------------------------------


@contextmanager
def hub(base_url: str) -> Iterator[ClientConnection]:
    """A WebSocket client of a replica's hub; it buffers all it receives, so it never falls
    behind, and answers the server's pings by itself."""
    url = base_url.replace("http://", "ws://", 1) + "/api/ws"
    options: dict[str, Any] = {"open_timeout": WAIT_S, "ping_interval": None, "max_queue": None}
    with connect(url, proxy=None, **options) as ws:
        yield ws


def received_so_far(ws: ClientConnection) -> list[Message]:
    """The messages that have arrived, without waiting for more."""
    messages: list[Message] = []
    while True:
        try:
            messages.append(json.loads(ws.recv(timeout=0)))
        except TimeoutError:
            return messages


def subscribe(ws: ClientConnection, *topics: str) -> list[Message]:
    """Subscribe to `topics` (all accepted); returns the messages that came before the answer."""
    ws.send(json.dumps({"type": "subscribe", "topics": list(topics)}))
    messages = receive_until(ws, lambda m: m["type"] in ("subscribed", "error"), "subscribed")
    assert messages[-1] == {"type": "subscribed", "topics": list(topics)}, messages[-1]
    return messages[:-1]


def events_of(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m["type"] not in REPLIES]


def run_ended(run_id: int) -> Callable[[Message], bool]:
    return lambda m: (
        m["type"] == "run_updated" and m["data"]["id"] == run_id and m["data"]["status"] in FINAL
    )


@dataclass(frozen=True)
class Received:
    """One Server-Sent Event as the client saw it."""

    name: str
    id: str
    data: dict[str, Any]


class EventStream:
    """`GET /api/runs/{id}/events` read by httpx-sse in a thread, event by event as it comes."""

    def __init__(self, base_url: str, run_id: int) -> None:
        self.url = f"{base_url}/api/runs/{run_id}/events"
        self.events: list[Received] = []
        self.status: int | None = None
        self.error: BaseException | None = None
        self.ended = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            # No read timeout: heartbeats keep a stalled stream busy; `rest()` bounds the wait.
            timeout = httpx.Timeout(WAIT_S, read=None)
            with (
                httpx.Client(timeout=timeout) as http,
                connect_sse(http, "GET", self.url) as source,
            ):
                self.status = source.response.status_code
                if self.status != 200:
                    return
                for sse in source.iter_sse():
                    if sse.data:  # httpx-sse reports a heartbeat comment as an empty event
                        self.events.append(Received(sse.event, sse.id, sse.json()))
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended.set()

    def wait_for(self, name: str) -> None:
        wait_for(
            lambda: self.ended.is_set() or any(e.name == name for e in self.events),
            f"{name} on {self.url}",
            timeout_s=WAIT_S,
        )
        assert any(e.name == name for e in self.events), self._state()

    def rest(self) -> list[Received]:
        """Every event, once the server has ended the stream."""
        assert self.ended.wait(WAIT_S), f"the stream did not end; {self._state()}"
        assert self.error is None and self.status == 200, self._state()
        return list(self.events)

    def _state(self) -> str:
        return f"status {self.status}, error {self.error!r}, events {self.events}"


# -- the cluster and its log -----------------------------------------------------------------


def start_task(base_url: str, agent_id: int) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/api/agents/{agent_id}/task", params={"wait": False})
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


@dataclass(frozen=True)
class Stored:
    id: int
    type: str
    run_id: int | None
    data: dict[str, Any]


def stored_events(cluster: Cluster, agent_id: int) -> list[Stored]:
    """The event log's events about agent `agent_id`, its runs and threads, in id order."""
    e = events_table.c
    with cluster.database.transaction() as db:
        rows = db.execute(select(events_table).where(e.agent_id == agent_id).order_by(e.id))
        return [Stored(row.id, row.type, row.run_id, row.data) for row in rows]


def sse_name(event: Stored) -> str | None:
    """The name `GET /api/runs/{id}/events` gives a stored event, None for one it leaves out."""
    if event.type == "run_created":
        return "run.queued"
    if event.type == "run_updated":
        status = event.data["status"]
        return "run.started" if status == "running" else f"run.{status}"
    if event.type == "thread_message_created":
        return "message.created"
    return None


def expected_stream(log: list[Stored], run_id: int) -> list[tuple[str, str]]:
    """The (name, id) of each event a complete stream of run `run_id` has."""
    return [
        (name, str(event.id))
        for event in log
        if event.run_id == run_id and (name := sse_name(event)) is not None
    ]


def run_status(cluster: Cluster, run_id: int) -> str | None:
    with cluster.database.session() as session:
        return session.scalar(select(Run.status).where(Run.id == run_id))


def messages_of(base_url: str, thread_id: int) -> list[Message]:
    response = httpx.get(f"{base_url}/api/threads/{thread_id}/messages")
    assert response.status_code == 200, response.text
    items: list[Message] = response.json()["items"]
    return items


# -- a task run ------------------------------------------------------------------------------


def test_a_workers_task_run_reaches_a_websocket_on_one_replica_and_a_stream_on_the_other(
    cluster: Cluster, openai_server: FakeOpenAI
) -> None:
    # The first model call waits for the test: both clients follow the run before it goes on.
    openai_server.enqueue(
        Hang(then=ToolCall("calculator", {"expression": "6 * 7"})), Text("It is 42.")
    )
    agent = cluster.create_agent("followed", tools=["calculator"])
    replica_a, replica_b = cluster.apis

    with hub(replica_a.url) as ws:
        subscribe(ws, f"agent:{agent['id']}")
        run = start_task(replica_b.url, agent["id"])
        run_id = run["id"]
        wait_for(openai_server.count, "the worker's model call")
        received = subscribe(ws, f"run:{run_id}")
        stream = EventStream(replica_b.url, run_id)
        stream.wait_for("run.started")

        openai_server.release()
        streamed = stream.rest()
        received += receive_until(ws, run_ended(run_id), "the end of the run")

    assert cluster.executor_of(run_id) in {"w1", "w2"}
    log = stored_events(cluster, agent["id"])
    by_id = {event.id: event for event in log}
    thread_id = httpx.get(f"{replica_a.url}/api/runs/{run_id}").json()["thread_id"]
    assert [m["role"] for m in messages_of(replica_a.url, thread_id)] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]

    # The event stream on replica B: every stored event of the run, in order, then the end.
    assert [(e.name, e.id) for e in streamed] == expected_stream(log, run_id)
    assert [e.name for e in streamed] == [
        "run.queued",
        "run.started",
        *["message.created"] * 5,
        "run.succeeded",
    ]
    ids = [int(e.id) for e in streamed]
    assert ids == sorted(set(ids))
    assert all(e.data == by_id[int(e.id)].data for e in streamed)

    # The WebSocket on replica A: each event once, as stored. It subscribed to the run once the
    # run was waiting on its model: the thread's first messages may have come before that.
    events = events_of(received)
    ws_ids = [m["id"] for m in events]
    assert len(ws_ids) == len(set(ws_ids)), ws_ids
    assert all(m["data"] == by_id[m["id"]].data for m in events)
    assert all(m["type"] == by_id[m["id"]].type for m in events)
    first_messages = {
        event.id
        for event in log
        if event.type == "thread_message_created" and event.data["role"] in ("system", "user")
    }
    created = next(event.id for event in log if event.type == "run_created")
    expected = [event.id for event in log if event.id >= created and event.id not in first_messages]
    assert sorted(set(ws_ids) - first_messages) == expected
    run_statuses = [m["data"]["status"] for m in events if m["type"] == "run_updated"]
    assert run_statuses == ["running", "succeeded"]
    agent_statuses = [m["data"]["status"] for m in events if m["type"] == "agent_updated"]
    assert agent_statuses == ["running", "idle"]
    # The worker's events come in the order it recorded them (one publisher, one connection).
    from_worker = [i for i in ws_ids if i != created]
    assert from_worker == sorted(from_worker)


# -- a chat turn -----------------------------------------------------------------------------


def test_a_chat_turns_tokens_reach_a_replica_while_the_worker_streams_them(
    cluster: Cluster, openai_server: FakeOpenAI
) -> None:
    answer = "The answer is forty-two, streamed to you word by word by a patient model."
    # Spaced out, so the model is still answering when its first token reaches the client.
    openai_server.stream_delay = 0.2
    openai_server.enqueue(Text(answer))
    agent = cluster.create_agent("chatty")
    replica_a, replica_b = cluster.apis
    created = httpx.post(f"{replica_a.url}/api/threads", json={"agent_id": agent["id"]})
    assert created.status_code == 201, created.text
    thread_id = created.json()["id"]

    with hub(replica_b.url) as ws:
        subscribe(ws, f"thread:{thread_id}")
        turn = httpx.post(
            f"{replica_a.url}/api/threads/{thread_id}/messages", json={"content": "6 * 7?"}
        )
        assert turn.status_code == 202, turn.text
        run_id = turn.json()["id"]
        received = receive_until(
            ws,
            lambda m: (
                m["type"] == "stream_chunk"
                and m["data"]["chunk_type"] == "assistant_token"
                and bool(m["data"]["content"])
            ),
            "the first token",
        )
        # Live: the worker's model call is still streaming the rest of the answer.
        assert openai_server.requests[-1].state == "pending"
        stream = EventStream(replica_a.url, run_id)
        received += receive_until(ws, lambda m: m["type"] == "stream_end", "the end of the turn")
        streamed = stream.rest()

    assert cluster.executor_of(run_id) in {"w1", "w2"}
    messages = messages_of(replica_b.url, thread_id)
    assert [(m["role"], m["content"]) for m in messages if m["role"] != "system"] == [
        ("user", "6 * 7?"),
        ("assistant", answer),
    ]
    events = events_of(received)
    kinds = [m["data"]["chunk_type"] if m["type"] == "stream_chunk" else m["type"] for m in events]
    tokens = [
        m["data"]["content"]
        for m, kind in zip(events, kinds, strict=True)
        if kind == "assistant_token"
    ]
    assert "".join(tokens) == answer
    # Every token came before the turn ended: before the stored answer and the run's end.
    last_token = max(i for i, kind in enumerate(kinds) if kind == "assistant_token")
    assert kinds[last_token + 1 :] == [
        "thread_message_created",
        "assistant_message",
        "run_updated",
        "stream_end",
    ]
    assert events[-2]["data"]["status"] == "succeeded"
    # None of the stream events was lost on the way: their numbers follow each other.
    stream_ids = [m["id"] for m in events if m["type"].startswith("stream_")]
    assert [int(i.partition(".")[2]) for i in stream_ids] == list(range(1, len(stream_ids) + 1))

    # Replica A's event stream has the same tokens as `message.delta`, and ends with the turn.
    assert "".join(e.data["content"] for e in streamed if e.name == "message.delta") == answer
    assert streamed[-1].name == "run.succeeded"
    assert [e.data["role"] for e in streamed if e.name == "message.created"] == [
        "user",
        "assistant",
    ]


# -- a gap in the LISTEN connection ----------------------------------------------------------


@pytest.fixture
def replica_role(pg_database_url: str) -> Iterator[str]:
    """A database role of its own for one replica, so the test can cut that replica off."""
    role = f"zerg_replica_{os.getpid()}"
    with psycopg.connect(libpq_url(pg_database_url), autocommit=True) as admin:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
    yield role
    # After the cluster has stopped (this fixture was set up before it).
    with (
        suppress(psycopg.Error),
        psycopg.connect(libpq_url(pg_database_url), autocommit=True) as admin,
    ):
        admin.execute(f"DROP ROLE IF EXISTS {role}")


def listener_backends(admin: psycopg.Connection[Any], role: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE usename = %s AND query LIKE 'LISTEN%%'", (role,)
    ).fetchall()
    return [pid for (pid,) in rows]


def test_a_replica_that_lost_its_listener_delivers_the_events_stored_meanwhile(
    replica_role: str, cluster: Cluster, openai_server: FakeOpenAI
) -> None:
    replica_a, replica_b = cluster.apis
    # Replica B connects as its own role: the test can keep it from reconnecting a while.
    url = make_url(cluster.database.url).set(username=replica_role)
    replica_b.stop()
    replica_b.env = {
        **replica_b.env,
        "ZERG_DATABASE_URL": url.render_as_string(hide_password=False),
    }
    replica_b.start()
    openai_server.enqueue(Hang(then=Text("Done while you were away.")))
    agent = cluster.create_agent("away")

    with (
        psycopg.connect(libpq_url(cluster.database.url), autocommit=True) as admin,
        hub(replica_b.url) as ws,
    ):
        subscribe(ws, f"agent:{agent['id']}")
        run_id = start_task(replica_a.url, agent["id"])["id"]
        wait_for(openai_server.count, "the worker's model call")
        received = subscribe(ws, f"run:{run_id}")
        stream = EventStream(replica_b.url, run_id)
        stream.wait_for("run.started")
        # Replica B hears the worker live before the cut.
        if not any(m["type"] == "run_updated" for m in received):
            received += receive_until(
                ws, lambda m: m["type"] == "run_updated", "the run's start on replica B"
            )

        warnings_before = replica_b.log.read_text().count("cannot receive other processes")
        try:
            admin.execute(f"ALTER ROLE {replica_role} NOLOGIN")
            listeners = wait_for(
                lambda: listener_backends(admin, replica_role), "replica B's LISTEN connection"
            )
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (listeners,)
            )
            wait_for(
                lambda: (
                    replica_b.log.read_text().count("cannot receive other processes")
                    > warnings_before
                ),
                "replica B to notice it lost its LISTEN connection",
            )
            last_before_gap = stored_events(cluster, agent["id"])[-1].id

            # The rest of the run happens while replica B cannot listen.
            openai_server.release()
            wait_for(lambda: run_status(cluster, run_id) == "succeeded", "the run to end")
            assert listener_backends(admin, replica_role) == []
            missed = events_of(received_so_far(ws))
            assert not any(m["id"] > last_before_gap for m in missed), missed
            received += missed
            assert not any(e.name == "run.succeeded" for e in stream.events)
        finally:
            admin.execute(f"ALTER ROLE {replica_role} LOGIN")

        streamed = stream.rest()
        received += receive_until(ws, run_ended(run_id), "the end of the run on replica B")

    log = stored_events(cluster, agent["id"])
    gap = [event.id for event in log if event.id > last_before_gap]
    assert [e.type for e in log if e.id in gap] == [
        "thread_message_created",
        "agent_updated",
        "run_updated",
    ]
    # The WebSocket got each event of the gap from the log, in order, and nothing twice.
    ws_ids = [m["id"] for m in events_of(received)]
    assert len(ws_ids) == len(set(ws_ids)), ws_ids
    assert [i for i in ws_ids if i > last_before_gap] == gap
    assert set(ws_ids) <= {event.id for event in log}
    # The event stream has every event of the run and ends with its terminal one.
    assert [(e.name, e.id) for e in streamed] == expected_stream(log, run_id)
    assert streamed[-1].name == "run.succeeded"
