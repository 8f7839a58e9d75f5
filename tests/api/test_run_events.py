"""GET /api/runs/{id}/events, read by a real SSE client (httpx-sse) from a real server: the
events of a run in order with their ids, resume by id (also across a restart), the 204 that
stops a finished stream, heartbeats, cancel, and owner isolation."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource, aconnect_sse

from tests.api.helpers import assert_error
from tests.api.test_auth import wait_for_auth_mode
from tests.api.test_isolation_runs import add_person
from tests.support.openai_server import FakeOpenAI, Hang, Reply, Text, ToolCall, Usage
from tests.support.processes import ZergProcess
from tests.support.server import serve_in_thread
from tests.support.waiting import wait_for
from zerg import clock
from zerg.api.app import create_app
from zerg.db import Database
from zerg.events import log as event_log
from zerg.settings import Settings

pytestmark = pytest.mark.anyio

TERMINAL = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.timed_out"})
# The longest wait for one event: a stream that never ends fails the test instead of hanging
# it (heartbeats keep the connection busy, so the HTTP read timeout alone would not).
EVENT_TIMEOUT_S = 20
DEMO = {"name": "demo", "model": "scripted:demo", "task_instructions": "6 * 7?"}


# -- reading a run's event stream ----------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One event as the client saw it: its name, its `id:` and its JSON data."""

    name: str
    id: str
    data: dict[str, Any]


class RunEvents:
    """An open event stream of one run."""

    def __init__(self, source: EventSource) -> None:
        self._events = source.aiter_sse()

    async def next(self) -> Received | None:
        """The next event; None once the server has ended the stream."""
        async with asyncio.timeout(EVENT_TIMEOUT_S):
            try:
                sse = await anext(self._events)
            except StopAsyncIteration:
                return None
        return Received(sse.event, sse.id, sse.json())

    async def until(self, found: Callable[[Received], bool]) -> list[Received]:
        """The events up to and including the first one `found` accepts."""
        received: list[Received] = []
        while True:
            event = await self.next()
            assert event is not None, f"the stream ended before the event looked for: {received}"
            received.append(event)
            if found(event):
                return received

    async def rest(self) -> list[Received]:
        """Every event until the server ends the stream."""
        received: list[Received] = []
        while (event := await self.next()) is not None:
            received.append(event)
        return received


@asynccontextmanager
async def follow(
    http: httpx.AsyncClient,
    run_id: int,
    *,
    last_event_id: str | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[RunEvents]:
    """Open run `run_id`'s event stream (after `last_event_id`, sent as `Last-Event-ID`)."""
    sent = dict(headers or {})
    if last_event_id is not None:
        sent["Last-Event-ID"] = last_event_id
    url = f"/api/runs/{run_id}/events"
    async with aconnect_sse(http, "GET", url, headers=sent, params=params) as source:
        if source.response.status_code != 200:
            await source.response.aread()
            raise AssertionError(f"{source.response.status_code} {source.response.text}")
        yield RunEvents(source)


async def history(http: httpx.AsyncClient, run_id: int, **options: Any) -> list[Received]:
    """The run's events from the start (or after `last_event_id`) to the end of the stream."""
    async with follow(http, run_id, **options) as stream:
        return await stream.rest()


def position(event_id: str) -> tuple[int, int]:
    """`17` -> (17, 0), a delta's `17.3` -> (17, 3)."""
    stored, _, chunk = event_id.partition(".")
    return int(stored), int(chunk or 0)


def check_stream(events: list[Received], *, after: str = "0") -> None:
    """Ids strictly increase from `after`; a stored event's id is an integer and a delta's is
    `N.k`, N the stored event before it; the stream ends with its one terminal event."""
    last = position(after)
    stored = last[0]
    for event in events:
        current = position(event.id)
        assert current > last, f"{event.id} after {last}: {[e.id for e in events]}"
        if event.name == "message.delta":
            assert current[0] == stored and current[1] > 0, (event, stored)
        else:
            assert event.id == str(current[0]), event
            stored = current[0]
        last = current
    assert events, "no events"
    assert [e.name in TERMINAL for e in events].count(True) == 1, [e.name for e in events]
    assert events[-1].name in TERMINAL, [e.name for e in events]


def names(events: list[Received]) -> list[str]:
    return [e.name for e in events]


def roles(events: list[Received]) -> list[str]:
    return [e.data["role"] for e in events if e.name == "message.created"]


# -- making runs ---------------------------------------------------------------------------


async def create_agent(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    body = {**DEMO, "tools": ["calculator"], **fields}
    response = await http.post("/api/agents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def openai_agent(server: FakeOpenAI, **fields: Any) -> dict[str, Any]:
    """The fields of an agent whose model is the fake OpenAI server."""
    config = {"base_url": f"{server.base_url}/v1", "max_retries": 0}
    return {"model": "openai:gpt-test", "config": config, **fields}


async def finished_run(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: Any
) -> dict[str, Any]:
    """A task run of a new agent (scripted: a calculator call, then the answer), finished."""
    agent = await create_agent(http, headers, **fields)
    response = await http.post(
        f"/api/agents/{agent['id']}/task?wait=true&timeout_s=20", headers=headers
    )
    assert response.status_code == 200 and response.json()["status"] == "succeeded", response.text
    return dict(response.json())


async def messages_of(http: httpx.AsyncClient, thread_id: int) -> list[dict[str, Any]]:
    response = await http.get(f"/api/threads/{thread_id}/messages")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def same_message(event: Received, stored: dict[str, Any]) -> bool:
    """The event carries the stored message (`processed` may have changed since)."""
    fields = ("id", "thread_id", "role", "content", "tool_calls", "tool_call_id", "name")
    return all(event.data[f] == stored[f] for f in fields)


# -- the stream of a task run --------------------------------------------------------------


async def test_a_task_run_streams_its_events_in_order_then_ends(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(
        Hang(then=ToolCall("calculator", {"expression": "6 * 7"}, call_id="call_1")),
        Text("It is 42."),
    )
    agent = await create_agent(http, **openai_agent(openai_server))
    queued = (await http.post(f"/api/agents/{agent['id']}/task")).json()
    wait_for(openai_server.count, "the run's first model call")

    async with follow(http, queued["id"]) as stream:
        before = await stream.until(
            lambda e: e.name == "message.created" and e.data["role"] == "user"
        )
        openai_server.release()
        after = await stream.rest()

    events = before + after
    check_stream(events)
    assert names(events) == [
        "run.queued",
        "run.started",
        *["message.created"] * 5,
        "run.succeeded",
    ]
    assert roles(events) == ["system", "user", "assistant", "tool", "assistant"]
    run = (await http.get(f"/api/runs/{queued['id']}")).json()
    assert events[0].data == queued  # the run as it was queued
    assert events[1].data["id"] == run["id"] and events[1].data["status"] == "running"
    assert events[1].data["thread_id"] == run["thread_id"]
    assert events[-1].data == run  # the run as it finished
    stored = await messages_of(http, run["thread_id"])
    created = [e for e in events if e.name == "message.created"]
    assert len(created) == len(stored)
    assert all(same_message(e, m) for e, m in zip(created, stored, strict=True)), created
    assert created[2].data["tool_calls"] == [
        {"id": "call_1", "name": "calculator", "args": {"expression": "6 * 7"}}
    ]


async def test_a_client_that_connects_after_the_end_gets_the_whole_history(
    http: httpx.AsyncClient,
) -> None:
    run = await finished_run(http)

    events = await history(http, run["id"])

    check_stream(events)
    assert names(events) == ["run.queued", "run.started", *["message.created"] * 5, "run.succeeded"]
    assert events[0].data["status"] == "queued" and events[0].data["id"] == run["id"]
    assert events[-1].data == run
    stored = await messages_of(http, run["thread_id"])
    created = [e for e in events if e.name == "message.created"]
    assert all(same_message(e, m) for e, m in zip(created, stored, strict=True)), created
    assert await history(http, run["id"]) == events  # the same every time


async def test_resuming_gives_exactly_the_events_after_the_id(http: httpx.AsyncClient) -> None:
    run = await finished_run(http)
    events = await history(http, run["id"])

    for index, event in enumerate(events[:-1]):
        resumed = await history(http, run["id"], last_event_id=event.id)
        assert resumed == events[index + 1 :], f"resumed after {event.id}"
        check_stream(resumed, after=event.id)
    # The query parameter, for clients that cannot send the header.
    by_query = await history(http, run["id"], params={"last_event_id": events[3].id})
    assert by_query == events[4:]


async def test_resuming_from_the_terminal_event_or_later_is_204(http: httpx.AsyncClient) -> None:
    run = await finished_run(http)
    terminal = (await history(http, run["id"]))[-1]
    url = f"/api/runs/{run['id']}/events"

    by_header = await http.get(url, headers={"Last-Event-ID": terminal.id})
    by_query = await http.get(url, params={"last_event_id": terminal.id})
    later = await http.get(url, headers={"Last-Event-ID": str(int(terminal.id) + 1000)})

    for response in (by_header, by_query, later):
        assert response.status_code == 204, response.text
        assert response.content == b""


async def test_an_id_that_is_no_event_id_is_refused(http: httpx.AsyncClient) -> None:
    run = await finished_run(http)

    response = await http.get(
        f"/api/runs/{run['id']}/events", headers={"Last-Event-ID": "not-an-id"}
    )

    assert_error(response, 422, "invalid_last_event_id")


async def test_a_finished_run_whose_events_were_pruned_still_ends_its_stream(
    http: httpx.AsyncClient, database: Database
) -> None:
    run = await finished_run(http)
    with database.transaction() as db:  # as the retention prune does, days later
        assert event_log.prune(db, clock.now() + timedelta(days=1)) > 0

    async with asyncio.timeout(5):  # the answer needs no waiting: the run has ended
        events = await history(http, run["id"])

    assert names(events)[-1] == "run.succeeded"
    assert events[-1].data == run
    # Seen, it stops the client's reconnects like a stored terminal event.
    stop = await http.get(f"/api/runs/{run['id']}/events", headers={"Last-Event-ID": events[-1].id})
    assert stop.status_code == 204


async def test_resume_across_a_server_restart(settings: Settings) -> None:
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            run = await finished_run(http)
            events = await history(http, run["id"])

    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            resumed = await history(http, run["id"], last_event_id=events[2].id)
            again = await history(http, run["id"])
            stop = await http.get(
                f"/api/runs/{run['id']}/events", headers={"Last-Event-ID": events[-1].id}
            )

    assert resumed == events[3:]
    assert again == events
    assert stop.status_code == 204


class CrashScript:
    """A calculator call, then a model call that hangs until the server is killed, then (once
    restarted) the answer."""

    crashed = False

    def __call__(self, body: dict[str, Any]) -> Reply:
        if body["messages"][-1]["role"] != "tool":
            return ToolCall("calculator", {"expression": "6 * 7"})
        return Text("It is 42.") if self.crashed else Hang()


async def test_a_stream_cut_by_kill_9_resumes_after_the_restart_with_nothing_lost(
    zerg: ZergProcess, openai_server: FakeOpenAI
) -> None:
    script = CrashScript()
    openai_server.set_policy(script)
    zerg.start()
    async with httpx.AsyncClient(base_url=zerg.url, timeout=30) as http:
        agent = await create_agent(http, **openai_agent(openai_server))
        run = (await http.post(f"/api/agents/{agent['id']}/task")).json()
        wait_for(lambda: openai_server.count() == 2, "the hanging second model call")
        async with follow(http, run["id"]) as stream:
            seen = await stream.until(
                lambda e: e.name == "message.created" and e.data["role"] == "tool"
            )
            zerg.kill()
            with pytest.raises(httpx.TransportError):
                await stream.next()

        script.crashed = True
        zerg.start()
        resumed = await history(http, run["id"], last_event_id=seen[-1].id)
        everything = await history(http, run["id"])

    check_stream(resumed, after=seen[-1].id)
    assert everything == seen + resumed
    assert names(resumed)[-2:] == ["message.created", "run.succeeded"]
    assert resumed[-2].data["content"] == "It is 42."
    assert roles(everything) == ["system", "user", "assistant", "tool", "assistant"]


# -- the stream of a chat turn -------------------------------------------------------------


async def start_chat_turn(
    http: httpx.AsyncClient, server: FakeOpenAI, content: str
) -> dict[str, Any]:
    """A chat thread with an agent on the fake OpenAI server, and the turn answering `content`."""
    agent = await create_agent(http, **openai_agent(server, tools=[]))
    thread = await http.post("/api/threads", json={"agent_id": agent["id"]})
    assert thread.status_code == 201, thread.text
    turn = await http.post(
        f"/api/threads/{thread.json()['id']}/messages", json={"content": content}
    )
    assert turn.status_code == 202, turn.text
    return dict(turn.json())


ANSWER = " ".join(f"word{n}" for n in range(20))


async def test_a_chat_stream_resumed_mid_answer_misses_and_repeats_no_token(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.stream_delay = 0.05
    openai_server.reply_text(ANSWER)
    run = await start_chat_turn(http, openai_server, "Count.")

    async with follow(http, run["id"]) as stream:
        first = await stream.until(lambda e: e.name == "message.delta" and position(e.id)[1] >= 4)
    async with follow(http, run["id"], last_event_id=first[-1].id) as stream:
        rest = await stream.rest()

    check_stream(rest, after=first[-1].id)
    events = first + rest
    check_stream(events)
    deltas = "".join(e.data["content"] for e in events if e.name == "message.delta")
    assert deltas == ANSWER
    assert roles(events) == ["user", "assistant"]
    assert [e for e in events if e.name == "message.created"][-1].data["content"] == ANSWER


async def test_after_a_restart_a_streamed_message_is_its_stored_message(
    settings: Settings, openai_server: FakeOpenAI
) -> None:
    openai_server.stream_delay = 0.05
    openai_server.reply_text(ANSWER)
    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            run = await start_chat_turn(http, openai_server, "Count.")
            async with follow(http, run["id"]) as stream:
                seen = await stream.until(
                    lambda e: e.name == "message.delta" and position(e.id)[1] >= 4
                )
            complete = await history(http, run["id"])  # the turn has finished

    with serve_in_thread(create_app(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            resumed = await history(http, run["id"], last_event_id=seen[-1].id)

    check_stream(resumed, after=seen[-1].id)
    assert names(resumed) == ["message.created", "run.succeeded"]
    assert resumed[0].data["role"] == "assistant" and resumed[0].data["content"] == ANSWER
    assert resumed == [e for e in complete if position(e.id) > position(seen[-1].id)][-2:]
    before = "".join(e.data["content"] for e in seen if e.name == "message.delta")
    assert before and ANSWER.startswith(before)


# -- heartbeats, cancel, isolation ---------------------------------------------------------


async def test_heartbeats_keep_a_waiting_stream_alive(
    settings: Settings, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang(then=Text("done")))
    quick = settings.model_copy(update={"heartbeat_s": 0.1})
    lines: list[str] = []
    with serve_in_thread(create_app(quick)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            agent = await create_agent(http, **openai_agent(openai_server, tools=[]))
            run = (await http.post(f"/api/agents/{agent['id']}/task")).json()
            wait_for(openai_server.count, "the run's model call")
            events_url = f"/api/runs/{run['id']}/events"
            async with asyncio.timeout(EVENT_TIMEOUT_S), http.stream("GET", events_url) as response:
                assert response.status_code == 200
                pings_while_waiting, status = 0, None
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line.startswith(":"):
                        pings_while_waiting += 1
                        if pings_while_waiting == 3:
                            status = (await http.get(f"/api/runs/{run['id']}")).json()["status"]
                            openai_server.release()
            pings = [line for line in lines if line.startswith(":")]

    assert status == "running"
    assert len(pings) >= 3 and all("ping" in line for line in pings), pings
    # The terminal event came after the heartbeats, then the stream ended.
    assert lines.index("event: run.succeeded") > lines.index(pings[2])
    assert lines[-1] == ""


async def test_a_cancelled_run_ends_with_run_cancelled(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang())
    agent = await create_agent(http, **openai_agent(openai_server, tools=[]))
    run = (await http.post(f"/api/agents/{agent['id']}/task")).json()
    wait_for(openai_server.count, "the run's model call")

    async with follow(http, run["id"]) as stream:
        before = await stream.until(
            lambda e: e.name == "message.created" and e.data["role"] == "user"
        )
        cancelled = await http.post(f"/api/runs/{run['id']}/cancel")
        after = await stream.rest()

    assert cancelled.status_code == 200, cancelled.text
    events = before + after
    check_stream(events)
    assert names(events) == ["run.queued", "run.started", *["message.created"] * 2, "run.cancelled"]
    assert events[-1].data["status"] == "cancelled" and events[-1].data["finished_at"]
    wait_for(lambda: openai_server.cut_off, "the model call to be cut off")
    assert await history(http, run["id"]) == events  # one terminal event, however recorded


async def test_a_run_that_times_out_ends_with_run_timed_out(
    http: httpx.AsyncClient, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang())
    agent = await create_agent(http, **openai_agent(openai_server, tools=[], timeout_s=1))
    run = (await http.post(f"/api/agents/{agent['id']}/task")).json()

    events = await history(http, run["id"])

    check_stream(events)
    assert names(events) == ["run.queued", "run.started", *["message.created"] * 2, "run.timed_out"]
    assert events[-1].data["status"] == "timed_out" and "timeout_s=1" in events[-1].data["error"]
    assert events[-1].data == (await http.get(f"/api/runs/{run['id']}")).json()


async def test_a_cancelled_runs_terminal_event_carries_the_run_as_finished(
    http: httpx.AsyncClient, client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(
        ToolCall("calculator", {"expression": "6 * 7"}, usage=Usage(20, 7)), Hang()
    )
    agent = await create_agent(http, **openai_agent(openai_server))
    run = (await http.post(f"/api/agents/{agent['id']}/task")).json()
    wait_for(lambda: openai_server.count() == 2, "the run's second model call")

    async with follow(http, run["id"]) as stream:
        await stream.until(lambda e: e.name == "message.created" and e.data["role"] == "tool")
        assert (await http.post(f"/api/runs/{run['id']}/cancel")).status_code == 200
        terminal = (await stream.rest())[-1]

    def settled() -> dict[str, Any] | None:
        current: dict[str, Any] = client.get(f"/api/runs/{run['id']}").json()
        return current if current["total_tokens"] == 27 else None

    finished = wait_for(settled, "the cancelled run's usage")
    assert terminal.name == "run.cancelled"
    assert terminal.data == finished


async def test_another_users_run_is_404(client: httpx.Client, database: Database) -> None:
    ada = add_person(database, "ada", admin=False)
    bob = add_person(database, "bob", admin=False)
    wait_for_auth_mode(client)
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as http:
        run = await finished_run(http, ada.headers)
        url = f"/api/runs/{run['id']}/events"

        theirs = await http.get(url, headers=bob.headers)
        anonymous = await http.get(url)
        mine = await history(http, run["id"], headers=ada.headers)

    assert_error(theirs, 404, "not_found")
    assert theirs.json()["detail"] == f"run {run['id']} does not exist"
    assert anonymous.status_code == 401
    assert mine[-1].name == "run.succeeded"
