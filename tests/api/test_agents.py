"""/api/agents: create, read, list, update, delete, and every way a request can be refused."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.api.helpers import T0_JSON, AgentFactory, FrozenClock, Rows, assert_error, ids
from zerg.models import Agent, Message, Run, Thread, Trigger

FULL_AGENT: dict[str, Any] = {
    "name": "Morning digest",
    "model": "openai:gpt-4o-mini",
    "system_instructions": "You are concise.",
    "task_instructions": "Summarise the news.",
    "tools": ["http_get", "current_time"],
    "schedule": "0 7 * * 1-5",
    "timezone": "Europe/Paris",
    "run_on_schedule": False,
    "missed_fires": "skip",
    "concurrency": "queue",
    "timeout_s": 120,
    "notify_url": "https://hooks.example.com/zerg",
    "config": {"temperature": 0.2, "base_url": "http://127.0.0.1:9/v1", "tags": ["a", "b"]},
}
READ_ONLY_STATE = {
    "status": "idle",
    "last_run_at": None,
    "next_run_at": None,
    "last_error": None,
}


def test_create_with_every_field_returns_and_stores_them(
    client: httpx.Client, clock: FrozenClock
) -> None:
    response = client.post("/api/agents", json=FULL_AGENT)

    assert response.status_code == 201
    created = response.json()
    assert isinstance(created["id"], int)
    assert created == {
        "id": created["id"],
        **FULL_AGENT,
        **READ_ONLY_STATE,
        "created_at": T0_JSON,
        "updated_at": T0_JSON,
    }
    assert client.get(f"/api/agents/{created['id']}").json() == created


def test_create_fills_in_defaults(client: httpx.Client, clock: FrozenClock) -> None:
    response = client.post("/api/agents", json={"name": "Bare", "model": "scripted:echo"})

    assert response.status_code == 201
    created = response.json()
    assert created == {
        "id": created["id"],
        "name": "Bare",
        "model": "scripted:echo",
        "system_instructions": "",
        "task_instructions": None,
        "tools": [],
        "schedule": None,
        "timezone": "UTC",
        "run_on_schedule": True,
        "missed_fires": "run_once",
        "concurrency": "reject",
        "timeout_s": 600,
        "notify_url": None,
        **READ_ONLY_STATE,
        "config": {},
        "created_at": T0_JSON,
        "updated_at": T0_JSON,
    }


def test_create_trims_text_drops_repeated_tools_and_takes_the_bounds(
    make_agent: AgentFactory,
) -> None:
    created = make_agent(
        name="  Digest  ",
        model=" anthropic:claude ",
        schedule=" @daily ",
        tools=["calculator", "http_get", "calculator"],
    )

    assert created["name"] == "Digest"
    assert created["model"] == "anthropic:claude"
    assert created["schedule"] == "@daily"
    assert created["tools"] == ["calculator", "http_get"]
    assert make_agent(timeout_s=1)["timeout_s"] == 1
    assert make_agent(timeout_s=86400)["timeout_s"] == 86400


def test_list_returns_agents_oldest_first(client: httpx.Client, make_agent: AgentFactory) -> None:
    assert client.get("/api/agents").json() == {"items": [], "next_cursor": None}
    created = [make_agent(name=f"agent {i}") for i in range(3)]

    response = client.get("/api/agents")

    assert response.status_code == 200
    assert response.json() == {"items": created, "next_cursor": None}


def test_get_returns_one_agent(client: httpx.Client, make_agent: AgentFactory) -> None:
    make_agent(name="other")
    wanted = make_agent(name="wanted")

    response = client.get(f"/api/agents/{wanted['id']}")

    assert response.status_code == 200
    assert response.json() == wanted


def test_missing_agent_is_404(client: httpx.Client, make_agent: AgentFactory) -> None:
    missing = make_agent()["id"] + 1000

    for method, body in [("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)]:
        response = client.request(method, f"/api/agents/{missing}", json=body)

        assert response.status_code == 404, method
        assert response.json() == {
            "detail": f"agent {missing} does not exist",
            "code": "not_found",
        }


def test_patch_changes_only_the_fields_sent(
    client: httpx.Client, clock: FrozenClock, make_agent: AgentFactory
) -> None:
    agent = make_agent(**FULL_AGENT)
    clock.advance(minutes=5)

    response = client.patch(
        f"/api/agents/{agent['id']}", json={"name": "Evening digest", "timeout_s": 30}
    )

    assert response.status_code == 200
    expected = {
        **agent,
        "name": "Evening digest",
        "timeout_s": 30,
        "updated_at": "2026-03-04T05:11:07Z",
    }
    assert response.json() == expected
    assert client.get(f"/api/agents/{agent['id']}").json() == expected


def test_patch_every_writable_field(client: httpx.Client, make_agent: AgentFactory) -> None:
    agent = make_agent()
    changes = {**FULL_AGENT, "model": "scripted:demo", "tools": ["calculator"]}

    response = client.patch(f"/api/agents/{agent['id']}", json=changes)

    assert response.status_code == 200
    body = response.json()
    assert {field: body[field] for field in changes} == changes
    assert client.get(f"/api/agents/{agent['id']}").json() == body


def test_patch_can_clear_schedule_and_task_instructions(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    agent = make_agent(**FULL_AGENT)

    response = client.patch(
        f"/api/agents/{agent['id']}", json={"schedule": None, "task_instructions": None}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["schedule"] is None
    assert body["task_instructions"] is None
    cleared = ("schedule", "task_instructions", "updated_at")
    assert {k: v for k, v in body.items() if k not in cleared} == {
        k: v for k, v in agent.items() if k not in cleared
    }


def test_patch_with_an_empty_body_changes_nothing(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    agent = make_agent(**FULL_AGENT)

    response = client.patch(f"/api/agents/{agent['id']}", json={})

    assert response.status_code == 200
    assert response.json() == agent


def test_delete_removes_the_agent(client: httpx.Client, make_agent: AgentFactory) -> None:
    kept = make_agent(name="kept")
    doomed = make_agent(name="doomed")

    response = client.delete(f"/api/agents/{doomed['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/api/agents/{doomed['id']}").status_code == 404
    assert ids(client.get("/api/agents").json()["items"]) == [kept["id"]]
    assert_error(client.delete(f"/api/agents/{doomed['id']}"), 404, "not_found")


def test_delete_removes_threads_messages_runs_and_triggers(
    client: httpx.Client, make_agent: AgentFactory, rows: Rows
) -> None:
    doomed, kept = make_agent(name="doomed"), make_agent(name="kept")
    owned: dict[int, dict[str, list[int]]] = {}
    for agent in (doomed, kept):
        chat = client.post("/api/threads", json={"agent_id": agent["id"]}).json()["id"]
        task = rows.thread(agent["id"], thread_type="manual")
        rows.message(chat, role="user", content="hello")
        rows.message(task, role="user", content="do it")
        owned[agent["id"]] = {
            "threads": [chat, task],
            "runs": [rows.run(agent["id"], thread_id=task), rows.run(agent["id"])],
        }
        rows.trigger(agent["id"])

    assert (rows.count(Thread), rows.count(Message), rows.count(Run)) == (4, 6, 4)

    assert client.delete(f"/api/agents/{doomed['id']}").status_code == 204

    gone, left = owned[doomed["id"]], owned[kept["id"]]
    assert rows.count(Agent, Agent.id == doomed["id"]) == 0
    assert rows.count(Thread, Thread.agent_id == doomed["id"]) == 0
    assert rows.count(Message, Message.thread_id.in_(gone["threads"])) == 0
    assert rows.count(Run, Run.agent_id == doomed["id"]) == 0
    assert rows.count(Trigger, Trigger.agent_id == doomed["id"]) == 0
    # The other agent keeps everything: 2 threads, 3 messages (system, user, user), 2 runs.
    assert rows.count(Thread) == 2
    assert rows.count(Message) == 3
    assert rows.count(Message, Message.thread_id.in_(left["threads"])) == 3
    assert rows.count(Run) == 2
    assert rows.count(Trigger) == 1
    assert rows.get(Run, left["runs"][0]) is not None


# Per field: (value, fragments the detail must contain: the field, and why the value is refused)
INVALID_VALUES: dict[str, list[tuple[Any, tuple[str, ...]]]] = {
    "name": [
        ("", ("name:", "at least 1 character")),
        ("   ", ("name:", "at least 1 character")),
        ("x" * 201, ("name:", "at most 200 characters")),
        ("nul\x00byte", ("name:", "NUL character")),
        (None, ("name:",)),
    ],
    "model": [
        ("gpt-4o-mini", ("model:", "'provider:name'")),
        ("skynet:t800", ("model:", "unknown model provider 'skynet'", "openai")),
        (":gpt-4o", ("model:", "unknown model provider ''")),
        ("openai:", ("model:", "'provider:name'")),
        ("openai:   ", ("model:", "'provider:name'")),
        ("openai:" + "x" * 200, ("model:", "at most 200 characters")),
    ],
    "schedule": [
        ("every morning", ("schedule:", "not a valid cron expression")),
        ("61 * * * *", ("schedule:", "not a valid cron expression")),
        ("", ("schedule:", "not a valid cron expression")),
        ("* " * 101, ("schedule:", "at most 200 characters")),
    ],
    "timezone": [
        ("Mars/Olympus_Mons", ("timezone:", "not an IANA time zone name")),
        ("America", ("timezone:", "not an IANA time zone name")),
        ("../../etc/passwd", ("timezone:", "not an IANA time zone name")),
        ("", ("timezone:", "not an IANA time zone name")),
    ],
    "concurrency": [
        ("parallel", ("concurrency:", "'reject' or 'queue'")),
        ("REJECT", ("concurrency:", "'reject' or 'queue'")),
    ],
    "timeout_s": [
        (0, ("timeout_s:", "greater than or equal to 1")),
        (-5, ("timeout_s:", "greater than or equal to 1")),
        (86401, ("timeout_s:", "less than or equal to 86400")),
        (1.5, ("timeout_s:", "valid integer")),
    ],
    "tools": [
        (["http_get", "rm_rf"], ("tools:", "unknown tool(s) rm_rf", "calculator")),
        ("http_get", ("tools:", "valid list")),
    ],
    "run_on_schedule": [("sometimes", ("run_on_schedule:", "valid boolean"))],
    "config": [
        (["not", "an", "object"], ("config:", "valid dictionary")),
        ({"key": ["nul\x00"]}, ("config:", "NUL character")),
    ],
    "colour": [("red", ("colour:", "Extra inputs are not permitted"))],
}
READ_ONLY_VALUES: dict[str, Any] = {
    "id": 7,
    "status": "running",
    "last_run_at": "2026-01-01T00:00:00Z",
    "next_run_at": "2026-01-01T00:00:00Z",
    "last_error": "boom",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}
NOT_NULLABLE = [
    "name", "model", "system_instructions", "tools", "timezone", "run_on_schedule",
    "concurrency", "timeout_s", "config",
]  # fmt: skip
VALID = {"name": "Digest", "model": "openai:gpt-4o-mini"}


def test_create_refuses_an_invalid_field_and_stores_nothing(client: httpx.Client) -> None:
    for field, cases in INVALID_VALUES.items():
        for value, fragments in cases:
            response = client.post("/api/agents", json={**VALID, field: value})

            assert_error(response, 422, "validation_error", *fragments, case=(field, value))
    assert client.get("/api/agents").json()["items"] == []


def test_create_refuses_read_only_fields(client: httpx.Client) -> None:
    for field, value in READ_ONLY_VALUES.items():
        response = client.post("/api/agents", json={**VALID, field: value})

        assert_error(
            response, 422, "validation_error", f"read-only field(s) cannot be set: {field}",
            case=field,
        )  # fmt: skip
    assert client.get("/api/agents").json()["items"] == []


def test_create_requires_name_and_model(client: httpx.Client) -> None:
    for missing in ("name", "model"):
        body = {k: v for k, v in VALID.items() if k != missing}

        response = client.post("/api/agents", json=body)

        assert_error(response, 422, "validation_error", f"{missing}: Field required", case=body)


def test_create_names_every_invalid_field(client: httpx.Client) -> None:
    response = client.post("/api/agents", json={"name": "", "model": "nope", "timeout_s": 0})

    assert_error(response, 422, "validation_error", "name:", "model:", "timeout_s:")
    locations = {tuple(error["loc"]) for error in response.json()["errors"]}
    assert locations == {("body", "name"), ("body", "model"), ("body", "timeout_s")}


def test_create_refuses_values_the_database_cannot_store(client: httpx.Client) -> None:
    """JSON can carry NaN, Infinity and lone surrogates; PostgreSQL and SQLite cannot store them."""
    for raw, fragment in [
        ('{"t": NaN}', "finite number"),
        ('{"t": -Infinity}', "finite number"),
        ('{"t": "\\ud800"}', "surrogate"),
        ('{"\\u0000": 1}', "NUL character"),
    ]:
        body = f'{{"name": "Digest", "model": "openai:x", "config": {raw}}}'

        response = client.post(
            "/api/agents", content=body, headers={"content-type": "application/json"}
        )

        assert_error(response, 422, "validation_error", "config:", fragment, case=raw)
    assert client.get("/api/agents").json()["items"] == []


def test_patch_refuses_an_invalid_field_and_changes_nothing(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    agent = make_agent(**FULL_AGENT)

    for field, cases in INVALID_VALUES.items():
        for value, fragments in cases:
            response = client.patch(
                f"/api/agents/{agent['id']}", json={"system_instructions": "new", field: value}
            )

            # name=None is refused as a null for a required field, in its own words.
            if (field, value) == ("name", None):
                fragments = ("cannot be null: name",)
            assert_error(response, 422, "validation_error", *fragments, case=(field, value))
    assert client.get(f"/api/agents/{agent['id']}").json() == agent


def test_patch_refuses_read_only_fields(client: httpx.Client, make_agent: AgentFactory) -> None:
    agent = make_agent()

    for field, value in READ_ONLY_VALUES.items():
        response = client.patch(f"/api/agents/{agent['id']}", json={"name": "New", field: value})

        assert_error(
            response, 422, "validation_error", f"read-only field(s) cannot be set: {field}",
            case=field,
        )  # fmt: skip
    assert client.get(f"/api/agents/{agent['id']}").json() == agent


def test_patch_refuses_null_for_a_required_field(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    agent = make_agent(**FULL_AGENT)

    for field in NOT_NULLABLE:
        response = client.patch(f"/api/agents/{agent['id']}", json={"schedule": None, field: None})

        assert_error(response, 422, "validation_error", f"cannot be null: {field}", case=field)
    assert client.get(f"/api/agents/{agent['id']}").json() == agent


def test_schedule_shows_next_fire_times_and_next_run_at(client: httpx.Client) -> None:
    created = client.post(
        "/api/agents",
        json={
            "name": "s",
            "model": "scripted:demo",
            "schedule": "0 9 * * *",
            "timezone": "Europe/Paris",
        },
    ).json()

    schedule = client.get(f"/api/agents/{created['id']}/schedule", params={"count": 3}).json()

    assert schedule["schedule"] == "0 9 * * *" and schedule["timezone"] == "Europe/Paris"
    times = [datetime.fromisoformat(t) for t in schedule["fire_times"]]
    assert len(times) == 3
    assert all(t.astimezone(ZoneInfo("Europe/Paris")).hour == 9 for t in times)
    assert times == sorted(times)
    assert datetime.fromisoformat(created["next_run_at"]) == times[0]

    paused = client.patch(f"/api/agents/{created['id']}", json={"run_on_schedule": False}).json()
    assert paused["next_run_at"] is None
    moved = client.patch(
        f"/api/agents/{created['id']}", json={"run_on_schedule": True, "schedule": "0 18 * * *"}
    ).json()
    assert (
        datetime.fromisoformat(moved["next_run_at"]).astimezone(ZoneInfo("Europe/Paris")).hour == 18
    )

    none = client.patch(f"/api/agents/{created['id']}", json={"schedule": None}).json()
    assert none["next_run_at"] is None
    assert client.get(f"/api/agents/{created['id']}/schedule").json()["fire_times"] == []
    bad = client.get(f"/api/agents/{created['id']}/schedule", params={"count": 0})
    assert bad.status_code == 422
    assert client.get("/api/agents/999/schedule").status_code == 404
