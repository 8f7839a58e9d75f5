"""/api/threads and /api/threads/{id}/messages."""

import re
from typing import Any

import httpx

from tests.api.helpers import T0_JSON, AgentFactory, FrozenClock, Rows, assert_error, ids
from zerg.models import Message, Run


def _thread(client: httpx.Client, agent_id: int, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/threads", json={"agent_id": agent_id, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _messages(client: httpx.Client, thread_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/threads/{thread_id}/messages")
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_create_starts_an_active_chat_thread_with_the_system_message(
    client: httpx.Client, clock: FrozenClock, make_agent: AgentFactory
) -> None:
    agent = make_agent(system_instructions="You are terse.")

    response = client.post("/api/threads", json={"agent_id": agent["id"], "title": " Planning "})

    assert response.status_code == 201
    thread = response.json()
    assert thread == {
        "id": thread["id"],
        "agent_id": agent["id"],
        "title": "Planning",
        "thread_type": "chat",
        "active": True,
        "created_at": T0_JSON,
        "updated_at": T0_JSON,
    }
    assert client.get(f"/api/threads/{thread['id']}").json() == thread
    assert client.get("/api/threads").json() == {"items": [thread], "next_cursor": None}
    [system] = _messages(client, thread["id"])
    assert system == {
        "id": system["id"],
        "thread_id": thread["id"],
        "role": "system",
        "content": "You are terse.",
        "tool_calls": None,
        "tool_call_id": None,
        "name": None,
        "processed": True,
        "metadata": {},
        "created_at": T0_JSON,
    }


def test_create_without_a_title_names_the_thread_after_the_time(
    client: httpx.Client, clock: FrozenClock, make_agent: AgentFactory
) -> None:
    thread = _thread(client, make_agent()["id"])

    assert thread["title"] == "Chat 2026-03-04 05:06 UTC"


def test_a_second_chat_thread_deactivates_the_first(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    agent, other = make_agent(), make_agent()
    first = _thread(client, agent["id"])
    others = _thread(client, other["id"])

    second = _thread(client, agent["id"])

    assert second["active"] is True
    assert client.get(f"/api/threads/{first['id']}").json()["active"] is False
    assert client.get(f"/api/threads/{others['id']}").json()["active"] is True


def test_create_for_a_missing_agent_is_404_and_stores_nothing(
    client: httpx.Client, rows: Rows
) -> None:
    response = client.post("/api/threads", json={"agent_id": 4242})

    assert response.status_code == 404
    assert response.json() == {"detail": "agent 4242 does not exist", "code": "not_found"}
    assert client.get("/api/threads").json()["items"] == []
    assert rows.count(Message) == 0


def test_create_refuses_invalid_input(client: httpx.Client, make_agent: AgentFactory) -> None:
    agent_id = make_agent()["id"]
    for body, fragments in [
        ({"title": "x"}, ("agent_id:", "Field required")),
        ({"agent_id": "one"}, ("agent_id:", "valid integer")),
        ({"agent_id": agent_id, "title": "   "}, ("title:", "at least 1 character")),
        ({"agent_id": agent_id, "title": "x" * 201}, ("title:", "at most 200 characters")),
        ({"agent_id": agent_id, "title": "nul\x00"}, ("title:", "NUL character")),
        ({"agent_id": agent_id, "thread_type": "manual"}, ("thread_type:", "Extra inputs")),
    ]:
        response = client.post("/api/threads", json=body)

        assert_error(response, 422, "validation_error", *fragments, case=body)
    assert client.get("/api/threads").json()["items"] == []


def test_list_is_newest_first_and_filters(
    client: httpx.Client, make_agent: AgentFactory, rows: Rows
) -> None:
    a, b = make_agent()["id"], make_agent()["id"]
    a_chat = _thread(client, a)["id"]
    a_manual = rows.thread(a, thread_type="manual")
    b_scheduled = rows.thread(b, thread_type="scheduled")
    b_chat = _thread(client, b)["id"]

    def listed(**params: Any) -> list[int]:
        response = client.get("/api/threads", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        return ids(response.json()["items"])

    assert listed() == [b_chat, b_scheduled, a_manual, a_chat]
    assert listed(agent_id=a) == [a_manual, a_chat]
    assert listed(agent_id=b) == [b_chat, b_scheduled]
    assert listed(thread_type="chat") == [b_chat, a_chat]
    assert listed(thread_type="scheduled") == [b_scheduled]
    assert listed(agent_id=a, thread_type="manual") == [a_manual]
    assert listed(agent_id=a, thread_type="webhook") == []
    assert listed(agent_id=b + 100) == []


def test_list_refuses_invalid_filters(client: httpx.Client) -> None:
    for params, fragments in [
        ({"thread_type": "task"}, ("thread_type:", "'chat'", "'manual'")),
        ({"thread_type": "CHAT"}, ("thread_type:", "'chat'", "'manual'")),
        ({"thread_type": ""}, ("thread_type:", "'chat'", "'manual'")),
        ({"agent_id": "abc"}, ("agent_id:", "valid integer")),
    ]:
        response = client.get("/api/threads", params=params)

        assert_error(response, 422, "validation_error", *fragments, case=params)


def test_missing_thread_is_404(client: httpx.Client) -> None:
    for method, path, body in [
        ("GET", "", None),
        ("PATCH", "", {"title": "x"}),
        ("DELETE", "", None),
        ("GET", "/messages", None),
    ]:
        response = client.request(method, f"/api/threads/777{path}", json=body)

        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "thread 777 does not exist", "code": "not_found"}


def test_patch_renames_only(
    client: httpx.Client, clock: FrozenClock, make_agent: AgentFactory
) -> None:
    thread = _thread(client, make_agent()["id"], title="Old")
    clock.advance(seconds=30)

    response = client.patch(f"/api/threads/{thread['id']}", json={"title": "  New  "})

    assert response.status_code == 200
    expected = {**thread, "title": "New", "updated_at": "2026-03-04T05:06:37Z"}
    assert response.json() == expected
    assert client.get(f"/api/threads/{thread['id']}").json() == expected


def test_patch_active_switches_the_agents_active_chat_thread(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    agent_id = make_agent()["id"]
    first = _thread(client, agent_id)["id"]
    second = _thread(client, agent_id)["id"]

    response = client.patch(f"/api/threads/{first}", json={"active": True})

    assert response.status_code == 200
    assert response.json()["active"] is True
    assert client.get(f"/api/threads/{second}").json()["active"] is False


def test_patch_active_false_deactivates(client: httpx.Client, make_agent: AgentFactory) -> None:
    thread = _thread(client, make_agent()["id"])

    response = client.patch(f"/api/threads/{thread['id']}", json={"active": False})

    assert response.status_code == 200
    assert response.json() == {
        **thread,
        "active": False,
        "updated_at": response.json()["updated_at"],
    }
    assert client.get(f"/api/threads/{thread['id']}").json()["active"] is False


def test_patch_active_on_a_task_thread_is_refused(
    client: httpx.Client, make_agent: AgentFactory, rows: Rows
) -> None:
    agent_id = make_agent()["id"]
    chat = _thread(client, agent_id)
    for thread_type in ("manual", "scheduled", "webhook", "api"):
        task = rows.thread(agent_id, thread_type=thread_type, title="task")
        before = client.get(f"/api/threads/{task}").json()

        response = client.patch(f"/api/threads/{task}", json={"active": True, "title": "renamed"})

        assert response.status_code == 422
        assert response.json() == {
            "detail": f"thread {task} is a {thread_type} thread; "
            "only a chat thread can be an agent's active thread",
            "code": "not_a_chat_thread",
        }
        assert client.get(f"/api/threads/{task}").json() == before
    assert client.get(f"/api/threads/{chat['id']}").json()["active"] is True


def test_patch_refuses_invalid_input_and_changes_nothing(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    thread = _thread(client, make_agent()["id"], title="Kept")
    for body, fragments in [
        ({"title": ""}, ("title:", "at least 1 character")),
        ({"title": "x" * 201}, ("title:", "at most 200 characters")),
        ({"active": "maybe"}, ("active:", "valid boolean")),
        ({"agent_id": 2}, ("agent_id:", "Extra inputs")),
        ({"thread_type": "manual"}, ("thread_type:", "Extra inputs")),
        ({"title": None}, ("cannot be null: title",)),
        ({"active": None}, ("cannot be null: active",)),
    ]:
        response = client.patch(f"/api/threads/{thread['id']}", json=body)

        assert_error(response, 422, "validation_error", *fragments, case=body)
    assert client.get(f"/api/threads/{thread['id']}").json() == thread


def test_the_schema_states_which_titles_are_accepted(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    title = schemas["ThreadUpdate"]["properties"]["title"]
    agent_id = make_agent()["id"]
    for candidate in ("a", "  a  ", "Ünïcode ✓", " ", "\t\n", "\u3000", "a\x00", "\x00"):
        stated = re.search(title["pattern"], candidate) is not None

        response = client.post("/api/threads", json={"agent_id": agent_id, "title": candidate})

        assert response.status_code == (201 if stated else 422), (candidate, response.text)


def test_the_schema_states_that_a_patch_field_cannot_be_null(client: httpx.Client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    properties = schemas["ThreadUpdate"]["properties"]

    # Left out or a value, never null: what the PATCH refuses above, the schema does not offer.
    assert properties["title"]["type"] == "string"
    assert properties["active"] == {"type": "boolean", "title": "Active"}
    assert "default" not in properties["title"]


def test_delete_removes_the_thread_and_its_messages_and_keeps_its_runs(
    client: httpx.Client, make_agent: AgentFactory, rows: Rows
) -> None:
    agent_id = make_agent()["id"]
    doomed = rows.thread(agent_id, thread_type="manual")
    kept = _thread(client, agent_id)["id"]
    rows.message(doomed, role="user", content="task")
    rows.message(doomed, role="assistant", content="done")
    rows.message(kept, role="user", content="hi")
    run_id = rows.run(agent_id, thread_id=doomed, status="succeeded")
    other_run = rows.run(agent_id, thread_id=kept)

    response = client.delete(f"/api/threads/{doomed}")

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/api/threads/{doomed}").status_code == 404
    assert ids(client.get("/api/threads").json()["items"]) == [kept]
    assert rows.count(Message, Message.thread_id == doomed) == 0
    assert rows.count(Message, Message.thread_id == kept) == 2
    run = client.get(f"/api/runs/{run_id}").json()
    assert (run["thread_id"], run["status"], run["agent_id"]) == (None, "succeeded", agent_id)
    assert client.get(f"/api/runs/{other_run}").json()["thread_id"] == kept
    assert rows.count(Run) == 2


def test_messages_come_back_in_insertion_order_with_every_field(
    client: httpx.Client, clock: FrozenClock, make_agent: AgentFactory, rows: Rows
) -> None:
    thread_id = _thread(client, make_agent(system_instructions="Be useful.")["id"])["id"]
    tool_calls = [{"id": "call_1", "name": "calculator", "args": {"expression": "6*7"}}]
    usage = {"input_tokens": 12, "output_tokens": 3, "model": "openai:gpt-4o-mini"}
    # Later messages get earlier timestamps: the order must come from insertion, not time.
    clock.advance(seconds=-1)
    rows.message(thread_id, role="user", content="What is 6*7?", processed=False)
    clock.advance(seconds=-1)
    rows.message(thread_id, role="assistant", content="", tool_calls=tool_calls, meta=usage)
    rows.message(thread_id, role="tool", content="42", tool_call_id="call_1", name="calculator")
    rows.message(thread_id, role="assistant", content="42.", meta={"latency_ms": 850})

    messages = _messages(client, thread_id)

    fields = ["role", "content", "tool_calls", "tool_call_id", "name", "processed", "metadata"]
    assert [[m[f] for f in fields] for m in messages] == [
        ["system", "Be useful.", None, None, None, True, {}],
        ["user", "What is 6*7?", None, None, None, False, {}],
        ["assistant", "", tool_calls, None, None, True, usage],
        ["tool", "42", None, "call_1", "calculator", True, {}],
        ["assistant", "42.", None, None, None, True, {"latency_ms": 850}],
    ]
    assert {m["thread_id"] for m in messages} == {thread_id}
    assert ids(messages) == sorted(ids(messages))
    assert [m["created_at"] for m in messages[:3]] == [
        T0_JSON,
        "2026-03-04T05:06:06Z",
        "2026-03-04T05:06:05Z",
    ]


def test_messages_of_one_thread_only(
    client: httpx.Client, make_agent: AgentFactory, rows: Rows
) -> None:
    agent_id = make_agent(system_instructions="sys")["id"]
    first = _thread(client, agent_id)["id"]
    second = _thread(client, agent_id)["id"]
    rows.message(first, role="user", content="to first")
    rows.message(second, role="user", content="to second")

    assert [m["content"] for m in _messages(client, first)] == ["sys", "to first"]
    assert [m["content"] for m in _messages(client, second)] == ["sys", "to second"]
