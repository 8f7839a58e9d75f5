"""The WebSocket hub `GET /api/ws`, over a real server with real clients: what each topic
carries and in what order, owner isolation, the handshake's checks, bad input, slow clients
and heartbeats, and a chat turn streamed on its thread's topic."""

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Event as ProtocolEvent
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from tests.api.helpers import Rows, assert_error
from tests.api.test_auth import add_user, bearer, wait_for_auth_mode
from tests.support.openai_server import FakeOpenAI, Hang, Text
from tests.support.server import serve_in_thread
from tests.support.waiting import wait_for
from tests.web.test_login import PASSWORD, csrf_of, sign_in
from zerg.api.app import create_app
from zerg.api.ws import MAX_TOPICS
from zerg.db import Database
from zerg.models import User
from zerg.services import users
from zerg.settings import Settings

Message = dict[str, Any]
# How long a client waits for what it expects before the test fails.
WAIT_S = 15.0
MISSING = 987_654  # an id no object has
REPLIES = {"subscribed", "unsubscribed", "pong", "error"}
EVENT_KEYS = {"type", "topic", "id", "data"}
TASK = {"model": "scripted:demo", "task_instructions": "6 * 7?"}


# -- clients ----------------------------------------------------------------------------------


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/api/ws"


@contextmanager
def hub(base_url: str, token: str | None = None, **options: Any) -> Iterator[ClientConnection]:
    """A real client connected to the hub. It answers the server's pings by itself and
    buffers every message it receives (so it never falls behind), and pings nobody."""
    options = {"open_timeout": WAIT_S, "ping_interval": None, "max_queue": None, **options}
    headers = bearer(token) if token else None
    with connect(ws_url(base_url), additional_headers=headers, proxy=None, **options) as ws:
        yield ws


def send(ws: ClientConnection, message: object) -> None:
    ws.send(json.dumps(message))


def receive_until(
    ws: ClientConnection, done: Callable[[Message], bool], what: str, wait_s: float = WAIT_S
) -> list[Message]:
    """Every message up to and including the first that is `done`."""
    messages: list[Message] = []
    deadline = time.monotonic() + wait_s
    while True:
        try:
            message = json.loads(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            raise AssertionError(f"no {what} within {wait_s:g} s; got {messages}") from None
        messages.append(message)
        if done(message):
            return messages


def subscribe(ws: ClientConnection, *topics: str) -> list[Message]:
    """Subscribe to `topics` (all accepted); returns the events that arrived before the answer."""
    send(ws, {"type": "subscribe", "topics": list(topics)})
    *before, answer = receive_until(ws, lambda m: m["type"] in REPLIES, "answer to subscribe")
    assert answer == {"type": "subscribed", "topics": list(topics)}
    return before


def round_trip(ws: ClientConnection) -> list[Message]:
    """Ping the hub; every message up to its pong, which shows the connection still works."""
    send(ws, {"type": "ping"})
    return receive_until(ws, lambda m: m["type"] == "pong", "pong")[:-1]


def errors(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m["type"] == "error"]


def is_event(type_: str, **data: Any) -> Callable[[Message], bool]:
    """Whether a message is event `type_` whose data has these values."""
    return lambda m: m["type"] == type_ and all(m["data"].get(k) == v for k, v in data.items())


def position(event: Message) -> tuple[int, int]:
    """Where an event stands: stored events by id (an int), chat stream events `N.k` after
    stored event N."""
    if isinstance(event["id"], int):
        return (event["id"], 0)
    assert re.fullmatch(r"\d+\.\d+", event["id"]), event
    stored, seq = event["id"].split(".")
    return (int(stored), int(seq))


def check_events(events: list[Message]) -> None:
    """Events have the documented shape, come in increasing id order, and each only once."""
    for event in events:
        assert set(event) == EVENT_KEYS, event
        assert isinstance(event["data"], dict), event
    positions = [position(event) for event in events]
    assert positions == sorted(set(positions)), [(e["type"], e["id"]) for e in events]


class RawPeer:
    """A WebSocket client on a plain socket that reads only when asked to and answers
    nothing by itself, not even the server's pings."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        self.protocol = ClientProtocol(parse_uri(ws_url(base_url)), max_size=None)
        self.messages: list[Message] = []
        self.pings = 0
        self.close_code: int | None = None
        self.ended = False
        self.response: Response | None = None
        self.sock = socket.socket()
        if rcvbuf is not None:  # before connecting, so the TCP window starts small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        url = urlsplit(base_url)
        self.sock.connect((url.hostname, url.port))
        request = self.protocol.connect()
        for name, value in (headers or {}).items():
            if name in request.headers:
                del request.headers[name]
            request.headers[name] = value
        self.protocol.send_request(request)
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        self.read_until(lambda: self.response is not None, "the handshake's answer")

    @property
    def accepted(self) -> bool:
        return self.protocol.state is State.OPEN

    @property
    def closed(self) -> bool:
        """Whether the server ended the connection (a close frame, or the socket ends)."""
        return self.ended or self.close_code is not None

    def send(self, message: object) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def received(self, type_: str) -> bool:
        return any(m["type"] == type_ for m in self.messages)

    def read_until(self, done: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
        """Read what arrives until `done()`; fails after `timeout_s` or when the connection
        ends first."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.ended or time.monotonic() > deadline:
                got = [m["type"] for m in self.messages]
                raise AssertionError(f"no {what} within {timeout_s:g} s; got {got}")
            self._read(deadline - time.monotonic())

    def _read(self, timeout_s: float) -> None:
        self.sock.settimeout(max(0.01, timeout_s))
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return
        except ConnectionResetError:
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.ended = True
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            self._take(event)
        self.protocol.data_to_send()  # the pongs and close replies it never sends

    def _take(self, event: Response | Frame) -> None:
        if isinstance(event, Response):
            self.response = event
        elif event.opcode is Opcode.TEXT:
            self.messages.append(json.loads(event.data))
        elif event.opcode is Opcode.PING:
            self.pings += 1
        elif event.opcode is Opcode.CLOSE:
            self.close_code = Close.parse(event.data).code

    def close(self) -> None:
        self.sock.close()


@contextmanager
def raw_peer(base_url: str, **options: Any) -> Iterator[RawPeer]:
    peer = RawPeer(base_url, **options)
    try:
        yield peer
    finally:
        peer.close()


# -- objects over REST ------------------------------------------------------------------------


def create_agent(client: httpx.Client, token: str | None = None, **fields: Any) -> Message:
    body = {"name": "agent", **TASK, **fields}
    response = client.post("/api/agents", json=body, headers=bearer(token) if token else None)
    assert response.status_code == 201, response.text
    agent: Message = response.json()
    return agent


def rename(client: httpx.Client, agent_id: int, name: str, token: str | None = None) -> None:
    headers = bearer(token) if token else None
    response = client.patch(f"/api/agents/{agent_id}", json={"name": name}, headers=headers)
    assert response.status_code == 200, response.text


def run_task(client: httpx.Client, agent_id: int, token: str | None = None) -> Message:
    """A task run of the agent, finished."""
    headers = bearer(token) if token else None
    response = client.post(f"/api/agents/{agent_id}/task?wait=true", headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "succeeded", response.text
    run: Message = response.json()
    return run


# -- topics -----------------------------------------------------------------------------------


def test_the_agents_topic_follows_agents_and_their_runs(
    base_url: str, client: httpx.Client
) -> None:
    with hub(base_url) as ws:
        assert subscribe(ws, "agents") == []
        agent = create_agent(client, name="worker")
        rename(client, agent["id"], "renamed")
        run = client.post(f"/api/agents/{agent['id']}/task").json()
        ran = receive_until(ws, is_event("run_updated", status="succeeded"), "the run's end")
        # Published after its commit: what the event says is what a reader finds.
        assert client.get(f"/api/runs/{run['id']}").json()["status"] == "succeeded"
        assert client.delete(f"/api/agents/{agent['id']}").status_code == 204
        gone = receive_until(ws, is_event("agent_deleted"), "agent_deleted")

    events = ran + gone
    check_events(events)
    assert [(e["type"], e["data"].get("status")) for e in events] == [
        ("agent_created", "idle"),
        ("agent_updated", "idle"),
        ("run_created", "queued"),
        ("agent_updated", "running"),
        ("run_updated", "running"),
        ("agent_updated", "idle"),
        ("run_updated", "succeeded"),
        ("agent_deleted", None),
    ]
    assert {e["topic"] for e in events} == {"agents"}
    assert events[0]["data"] == agent
    assert events[1]["data"]["name"] == "renamed"
    assert {e["data"]["id"] for e in events if e["type"].startswith("agent_")} == {agent["id"]}
    assert {e["data"]["id"] for e in events if e["type"].startswith("run_")} == {run["id"]}
    assert events[-1]["data"] == {"id": agent["id"]}


def test_a_topic_carries_its_objects_events_only_until_unsubscribed(
    base_url: str, client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Text("forty two")))
    watched = create_agent(
        client,
        name="watched",
        model="openai:gpt-test",
        config={"base_url": f"{openai_server.base_url}/v1", "max_retries": 0},
    )["id"]
    other = create_agent(client, name="other")["id"]
    agent_topic = f"agent:{watched}"
    with hub(base_url) as ws:
        assert subscribe(ws, agent_topic) == []
        rename(client, other, "other-2")
        run_task(client, other)
        run = client.post(f"/api/agents/{watched}/task").json()
        # Up to the run's thread: its last event on the agent's topic before the model call
        # (messages go to the thread's and the run's topics only).
        started = receive_until(ws, is_event("thread_created"), "the run's thread")
        run_topic = f"run:{run['id']}"
        wait_for(openai_server.count, "the model call", timeout_s=WAIT_S)
        assert subscribe(ws, run_topic) == []
        openai_server.release()
        ended = receive_until(ws, is_event("run_updated", status="succeeded"), "the run's end")
        send(ws, {"type": "unsubscribe", "topics": [agent_topic, run_topic]})
        answer = receive_until(ws, lambda m: m["type"] in REPLIES, "answer to unsubscribe")
        assert answer == [{"type": "unsubscribed", "topics": [agent_topic, run_topic]}]
        assert subscribe(ws, f"agent:{other}") == []
        rename(client, watched, "unheard")
        rename(client, other, "other-3")
        after = receive_until(ws, is_event("agent_updated", name="other-3"), "other's update")

    # Nothing of the other agent's before, and each event once, by its most specific topic.
    check_events(started + ended)
    assert [(e["type"], e["topic"]) for e in started] == [
        ("run_created", agent_topic),
        ("agent_updated", agent_topic),
        ("run_updated", agent_topic),
        ("thread_created", agent_topic),
    ]
    assert started[0]["data"]["id"] == run["id"]
    assert [(e["type"], e["topic"]) for e in ended] == [
        ("thread_message_created", run_topic),
        ("agent_updated", agent_topic),
        ("run_updated", run_topic),
    ]
    assert ended[0]["data"]["role"] == "assistant" and ended[0]["data"]["content"] == "forty two"
    assert ended[1]["data"]["status"] == "idle"
    # Unsubscribed: the watched agent's rename, made first, never came.
    assert [(e["type"], e["topic"]) for e in after] == [("agent_updated", f"agent:{other}")]


# -- isolation and the handshake --------------------------------------------------------------


def test_another_users_objects_are_not_found_and_their_events_never_arrive(
    base_url: str, client: httpx.Client, database: Database
) -> None:
    ann = add_user(database, "ann", admin=False)
    ben = add_user(database, "ben", admin=False)
    wait_for_auth_mode(client)
    anns = create_agent(client, ann, name="ann's")["id"]
    run = run_task(client, anns, ann)
    chat = client.post("/api/threads", json={"agent_id": anns}, headers=bearer(ann)).json()
    foreign = [f"agent:{anns}", f"thread:{run['thread_id']}", f"thread:{chat['id']}"]
    foreign += [f"run:{run['id']}", f"agent:{MISSING}", f"run:{MISSING}"]

    with hub(base_url, ann) as ann_ws, hub(base_url, ben) as ben_ws:
        send(ben_ws, {"type": "subscribe", "topics": foreign})
        answers = round_trip(ben_ws)
        assert subscribe(ann_ws, "agents") == []
        assert subscribe(ben_ws, "agents") == []
        rename(client, anns, "ann's 2", ann)
        run_task(client, anns, ann)
        bens = create_agent(client, ben, name="ben's")["id"]
        rename(client, anns, "ann's 3", ann)
        seen_by_ann = receive_until(ann_ws, is_event("agent_updated", name="ann's 3"), "update")
        seen_by_ben = receive_until(ben_ws, is_event("agent_created"), "ben's agent")

    # Each foreign topic refused exactly like a missing one, and nothing subscribed.
    refused = errors(answers)
    assert [e["topic"] for e in refused] == foreign, answers
    assert {e["data"]["code"] for e in refused} == {"not_found"}
    missing = refused[-2]["data"]["detail"].replace(str(MISSING), "N")
    assert refused[0]["data"]["detail"].replace(str(anns), "N") == missing
    for answer in answers:
        assert answer["type"] == "error" or answer == {"type": "subscribed", "topics": []}
    # Ben's dashboard shows his agent only; Ann's shows hers only.
    assert [(e["type"], e["data"]["id"]) for e in seen_by_ben] == [("agent_created", bens)]
    check_events(seen_by_ann)
    assert [e["type"] for e in seen_by_ann] == [
        "agent_updated",
        "run_created",
        "agent_updated",
        "run_updated",
        "agent_updated",
        "run_updated",
        "agent_updated",
    ]
    assert all(e["data"].get("agent_id", e["data"]["id"]) == anns for e in seen_by_ann)


def test_the_handshake_needs_a_token_in_auth_mode(
    base_url: str, client: httpx.Client, database: Database
) -> None:
    token = add_user(database)
    wait_for_auth_mode(client)

    for sent in (None, "zerg_" + "x" * 43):
        with pytest.raises(InvalidStatus) as refused, hub(base_url, sent):
            pass
        denial = refused.value.response
        assert_error(as_httpx(denial), 401, "unauthorized", case=sent)
    with hub(base_url, token) as ws:
        assert subscribe(ws, "agents") == []
        assert round_trip(ws) == []


def test_local_mode_refuses_other_hosts_and_other_origins(base_url: str) -> None:
    port = urlsplit(base_url).port
    for origin in ("http://evil.example", f"http://evil.example:{port}", "http://127.0.0.1:1"):
        with pytest.raises(InvalidStatus) as refused, hub(base_url, origin=origin):
            pass
        assert_error(as_httpx(refused.value.response), 403, "origin_not_allowed", case=origin)
    with raw_peer(base_url, headers={"Host": "attacker.example"}) as peer:
        assert peer.response is not None and not peer.accepted
        assert_error(as_httpx(peer.response), 421, "host_not_allowed")

    with hub(base_url, origin=base_url) as ws:  # the dashboard's own page
        assert subscribe(ws, "agents") == []
        assert round_trip(ws) == []


def as_httpx(response: Response) -> httpx.Response:
    """A handshake's denial response, for `assert_error`."""
    return httpx.Response(
        response.status_code,
        headers=response.headers.raw_items(),
        content=bytes(response.body or b""),
    )


# -- bad input --------------------------------------------------------------------------------


def test_bad_messages_get_errors_and_the_connection_stays_open(
    base_url: str, client: httpx.Client, rows: Rows
) -> None:
    cases: list[tuple[str, str, str | None]] = [
        ("this is not JSON", "bad_json", None),
        ("[1, 2, 3]", "bad_json", None),
        ('"subscribe"', "bad_json", None),
        ('{"type": "dance"}', "unknown_type", None),
        ('{"topics": ["agents"]}', "unknown_type", None),
        ('{"type": "subscribe", "topics": ["agent:abc"]}', "unknown_topic", "agent:abc"),
        ('{"type": "subscribe", "topics": ["runs"]}', "unknown_topic", "runs"),
        ('{"type": "subscribe", "topics": ["thread:-1"]}', "unknown_topic", "thread:-1"),
        ('{"type": "subscribe", "topics": ["run:1:2"]}', "unknown_topic", "run:1:2"),
    ]
    seeded = rows.agents(MAX_TOPICS)
    topics = ["agents", *(f"agent:{n}" for n in seeded)]  # one more than a client may follow
    with hub(base_url) as ws:
        for sent, code, topic in cases:
            ws.send(sent)
            answers = errors(round_trip(ws))
            assert len(answers) == 1, (sent, answers)
            assert answers[0]["topic"] == topic, (sent, answers)
            assert answers[0]["data"]["code"] == code, (sent, answers)
            assert isinstance(answers[0]["data"]["detail"], str) and answers[0]["data"]["detail"]
        send(ws, {"type": "subscribe", "topics": topics})
        answers = round_trip(ws)
        rename(client, seeded[0], "still listening")
        heard = receive_until(ws, is_event("agent_updated"), "the agent's update")

    refused = errors(answers)
    assert [(e["topic"], e["data"]["code"]) for e in refused] == [(topics[-1], "too_many_topics")]
    assert {"type": "subscribed", "topics": topics[:-1]} in answers
    assert [(e["topic"], e["data"]["name"]) for e in heard] == [
        (f"agent:{seeded[0]}", "still listening")
    ]


# -- slow clients and heartbeats --------------------------------------------------------------


def test_a_client_that_falls_behind_is_dropped_while_others_keep_receiving(
    settings: Settings,
) -> None:
    # Long instructions make each event about 200 kB, so a client that reads nothing soon
    # fills the sockets' buffers (a few MB), and then its buffer of `event_buffer` events.
    long = {"system_instructions": "s" * 100_000, "task_instructions": "t" * 100_000}
    app = create_app(settings.model_copy(update={"event_buffer": 10}))
    bus = app.state.bus
    with serve_in_thread(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        agent = create_agent(client, **long)["id"]
        with raw_peer(base_url, rcvbuf=4096) as slow, hub(base_url) as fast:
            slow.send({"type": "subscribe", "topics": ["agents"]})
            slow.read_until(lambda: slow.received("subscribed"), "answer to subscribe")
            assert subscribe(fast, "agents") == []
            updates = 0
            # Until the hub lets go of the slow client's subscription (at most 40 MB each).
            while bus.subscriber_count() > 1 and updates < 200:
                rename(client, agent, f"v{updates}")
                updates += 1
            last = f"v{updates - 1}"
            heard = receive_until(fast, is_event("agent_updated", name=last), "every update")
            # Only now does the slow client read: what was sent to it, then the end.
            slow.read_until(lambda: slow.closed, "the slow client's disconnection", timeout_s=30)
            assert round_trip(fast) == []

    assert [e["data"]["name"] for e in heard] == [f"v{n}" for n in range(updates)]
    # 1013 "try again later", when the close frame made it through.
    assert slow.close_code in (None, 1013), slow.close_code
    behind = [m["data"]["name"] for m in slow.messages if m["type"] == "agent_updated"]
    assert len(behind) < updates
    assert behind == [f"v{n}" for n in range(len(behind))]


class CountingPings(ClientConnection):
    """The real client (it answers every ping by itself), counting the server's pings."""

    pings = 0

    def process_event(self, event: ProtocolEvent) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING:
            self.pings += 1
        super().process_event(event)


def test_a_peer_that_does_not_answer_pings_is_disconnected(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"heartbeat_s": 0.5}))
    with (
        serve_in_thread(app) as base_url,
        raw_peer(base_url) as mute,
        hub(base_url, create_connection=CountingPings) as client,
    ):
        assert mute.accepted and isinstance(client, CountingPings)
        mute.read_until(lambda: mute.closed, "the mute peer's disconnection", timeout_s=10)
        # Several intervals later the client that answers is still connected.
        wait_for(lambda: client.pings >= 4, "four pings", timeout_s=10)
        assert round_trip(client) == []

    assert mute.pings >= 1


# -- credentials ------------------------------------------------------------------------------


@pytest.fixture
def rechecking(settings: Settings) -> Iterator[str]:
    """A server that checks its open connections' sign-ins and tokens every 0.3 s."""
    with serve_in_thread(create_app(settings.model_copy(update={"heartbeat_s": 0.3}))) as url:
        yield url


def close_of(ws: ClientConnection, wait_s: float = WAIT_S) -> Close:
    """The close frame the server ends the connection with (messages before it are skipped)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"the connection was still open after {wait_s:g} s") from None
        except ConnectionClosed as closed:
            assert closed.rcvd is not None, f"the connection ended without a close frame: {closed}"
            return closed.rcvd


def another_token(database: Database, name: str) -> str:
    with database.session() as session:
        _, token = users.create_token(users.get_user(name, session=session), session=session)
        session.commit()
    return token


def test_revoking_a_token_or_disabling_its_user_closes_its_connections(
    rechecking: str, database: Database
) -> None:
    ann = add_user(database, "ann", admin=False)
    anns_other = another_token(database, "ann")
    ben = add_user(database, "ben", admin=False)

    with hub(rechecking, ann) as revoked, hub(rechecking, anns_other) as kept:
        assert subscribe(revoked, "agents") == [] and subscribe(kept, "agents") == []
        with hub(rechecking, ben) as disabled:
            assert subscribe(disabled, "agents") == []
            with database.session() as session:
                users.revoke_token(ann, session=session)
                users.disable_user("ben", session=session)
                session.commit()

            by_revoking = close_of(revoked)
            by_disabling = close_of(disabled)
        # Many checks later, ann's other token still follows what it subscribed to.
        time.sleep(1.5)
        assert round_trip(kept) == []

    assert by_revoking.code == 4401
    assert re.fullmatch(r"API token zerg_\S+… was revoked", by_revoking.reason)
    assert ann.startswith(by_revoking.reason.split()[2].rstrip("…"))
    assert (by_disabling.code, by_disabling.reason) == (4401, "user 'ben' is disabled")
    with pytest.raises(InvalidStatus) as refused, hub(rechecking, ann):
        pass
    assert refused.value.response.status_code == 401


def test_signing_out_closes_the_sessions_connections(rechecking: str, database: Database) -> None:
    add_user(database, "ann")
    with database.session() as session:
        users.set_password("ann", PASSWORD, session=session)
        session.commit()
    with httpx.Client(base_url=rechecking, timeout=30) as browser:
        signed_in = sign_in(browser, "ann")
        assert signed_in.status_code == 303, signed_in.text
        cookie = {"Cookie": f"zerg_session={browser.cookies['zerg_session']}"}
        with connect(ws_url(rechecking), additional_headers=cookie, proxy=None) as ws:
            assert subscribe(ws, "agents") == []
            time.sleep(1.0)  # checked again a few times: the session stands
            assert round_trip(ws) == []

            browser.post("/logout", data={"csrf_token": csrf_of(browser.get("/"))})

            ended = close_of(ws)

    assert (ended.code, ended.reason) == (4401, "your session has ended; sign in again")


def test_a_user_whose_rights_changed_is_closed_to_connect_again(
    rechecking: str, database: Database
) -> None:
    ada = add_user(database, "ada", admin=True)
    ann = add_user(database, "ann", admin=False)
    with hub(rechecking, ada) as ws:
        assert subscribe(ws, "agents") == []
        with database.session() as session:
            session.get_one(User, users.get_user("ada", session=session).id).is_admin = False
            session.commit()

        changed = close_of(ws)

    assert (changed.code, changed.reason) == (4403, "your rights changed; connect again")
    # Connected again, the topics follow the rights ada has now: ann's agent is not hers to see.
    with httpx.Client(base_url=rechecking, timeout=30) as client:
        anns = create_agent(client, ann, name="ann's")["id"]
    with hub(rechecking, ada) as ws:
        send(ws, {"type": "subscribe", "topics": [f"agent:{anns}"]})
        [refused, answer] = receive_until(ws, lambda m: m["type"] == "subscribed", "answer")
    assert refused["data"]["code"] == "not_found"
    assert answer == {"type": "subscribed", "topics": []}


# -- chat -------------------------------------------------------------------------------------


def test_a_chat_turn_streams_on_its_threads_topic(base_url: str, client: httpx.Client) -> None:
    agent = create_agent(client, model="scripted:echo")["id"]
    thread = client.post("/api/threads", json={"agent_id": agent}).json()["id"]
    topic = f"thread:{thread}"
    with hub(base_url) as ws:
        assert subscribe(ws, topic) == []
        turn = client.post(
            f"/api/threads/{thread}/messages", json={"content": "hello there friend"}
        )
        assert turn.status_code == 202, turn.text
        events = receive_until(ws, is_event("stream_end"), "stream_end")

    check_events(events)
    assert {e["topic"] for e in events} == {topic}
    stored = client.get(f"/api/threads/{thread}/messages").json()["items"]
    answer = stored[-1]
    assert answer["role"] == "assistant" and answer["content"] == "echo: hello there friend"
    stream = [e for e in events if e["type"].startswith("stream_")]
    kinds = [e["data"].get("chunk_type", e["type"]) for e in stream]
    tokens = [
        e["data"]["content"] for e in stream if e["data"].get("chunk_type") == "assistant_token"
    ]
    assert kinds == [
        "stream_start",
        *["assistant_token"] * len(tokens),
        "assistant_message",
        "stream_end",
    ]
    assert len(tokens) > 1 and "".join(tokens) == answer["content"]
    assert all(isinstance(e["id"], str) for e in stream)
    whole = stream[-2]["data"]
    assert whole["id"] == answer["id"] and whole["content"] == answer["content"]
    assert stream[-1]["data"]["status"] == "succeeded"
    assert {e["data"]["run_id"] for e in stream} == {turn.json()["id"]}
    messages = [e["data"]["id"] for e in events if e["type"] == "thread_message_created"]
    assert messages == [m["id"] for m in stored[-2:]]  # the user's, then the answer
    runs = [(e["type"], e["data"]["status"]) for e in events if e["type"].startswith("run_")]
    assert runs == [
        ("run_created", "queued"),
        ("run_updated", "running"),
        ("run_updated", "succeeded"),
    ]
