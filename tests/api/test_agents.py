"""/api/agents: create, read, list, update, delete, and every way a request can be refused."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.api.helpers import T0_JSON, AgentFactory, FrozenClock, Rows, assert_error, ids
from tests.support.openai_server import FakeOpenAI, Text, ToolCall
from tests.support.server import serve_in_thread
from zerg.api.app import create_app
from zerg.models import Agent, Message, Run, Thread, Trigger
from zerg.settings import Settings

LOCAL_MODEL_URL = "http://127.0.0.1:9/v1"
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
    "config": {"temperature": 0.2, "base_url": LOCAL_MODEL_URL, "tags": ["a", "b"]},
    "max_run_tokens": 20_000,
    "max_run_cost_usd": 0.25,
    "max_day_tokens": 500_000,
    "max_day_cost_usd": 5.0,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The operator lists the local model server FULL_AGENT names."""
    return settings.model_copy(update={"model_base_urls": LOCAL_MODEL_URL})


READ_ONLY_STATE = {
    "owner_id": None,
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
        "max_run_tokens": None,
        "max_run_cost_usd": None,
        "max_day_tokens": None,
        "max_day_cost_usd": None,
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


def nested(depth: int) -> dict[str, Any]:
    """A config whose objects nest `depth` levels deep."""
    config: dict[str, Any] = {}
    for _ in range(depth - 1):
        config = {"a": config}
    return config


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
        # croniter's seconds field: every second.
        ("* * * * * *", ("schedule:", "not a valid cron expression", "standard 5 fields")),
        # croniter's year field: only in 1999, so never again.
        ("0 0 1 1 * 0 1999", ("schedule:", "standard 5 fields")),
        ("*/5 * * *", ("schedule:", "standard 5 fields")),
        # croniter's random (R) and hashed (H) values differ from one process to the next.
        ("R * * * *", ("schedule:", "standard 5 fields")),
        ("H * * * *", ("schedule:", "standard 5 fields")),
        ("@reboot", ("schedule:", "@hourly, @daily")),
    ],
    "system_instructions": [
        ("x" * 100_001, ("system_instructions:", "at most 100000 characters")),
    ],
    "task_instructions": [
        ("x" * 100_001, ("task_instructions:", "at most 100000 characters")),
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
        (nested(11), ("config:", "more than 10 deep")),
        (nested(900), ("config:", "more than 10 deep")),
        ({"notes": "x" * 16_384}, ("config:", "at most 16384 bytes as JSON")),
        ({"base_url": "ftp://models.example.com/v1"}, ("config:", "base_url: must be an http")),
        ({"base_url": "http://:8080/v1"}, ("config:", "base_url: must be an http")),
        ({"base_url": "http://[nope/v1"}, ("config:", "base_url: must be an http")),
        ({"base_url": 8080}, ("config:", "base_url: Input should be a valid string")),
        ({"max_retries": 11}, ("config:", "max_retries: Input should be less than or equal to 10")),
        ({"max_retries": -1}, ("config:", "max_retries:", "greater than or equal to 0")),
        ({"max_retries": "3"}, ("config:", "max_retries: Input should be a valid integer")),
        ({"max_retries": True}, ("config:", "max_retries: Input should be a valid integer")),
        ({"request_timeout_s": 0}, ("config:", "request_timeout_s:", "greater than 0")),
        ({"request_timeout_s": 601}, ("config:", "request_timeout_s:", "less than or equal")),
        ({"max_steps": 0}, ("config:", "max_steps:", "greater than or equal to 1")),
        ({"max_steps": 2.5}, ("config:", "max_steps: Input should be a valid integer")),
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


@contextmanager
def zerg_with(settings: Settings, **changes: Any) -> Iterator[httpx.Client]:
    """A second server on the test's database, with some settings changed."""
    changed = settings.model_copy(update=changes)
    with serve_in_thread(create_app(changed)) as url, httpx.Client(base_url=url) as client:
        yield client


def test_the_config_keys_zerg_reads_take_their_bounds(make_agent: AgentFactory) -> None:
    config = {
        "base_url": LOCAL_MODEL_URL,
        "max_retries": 10,
        "request_timeout_s": 0.5,
        "max_steps": 200,
        "deep": nested(9),  # ten levels with the config itself
        "notes": "x" * 16_000,
    }

    assert make_agent(config=config)["config"] == config
    assert make_agent(config={"max_retries": 0, "request_timeout_s": 600})["config"] == {
        "max_retries": 0,
        "request_timeout_s": 600,
    }


def test_max_steps_above_the_server_ceiling_is_refused_naming_the_setting(
    client: httpx.Client, make_agent: AgentFactory, settings: Settings
) -> None:
    response = client.post("/api/agents", json={**VALID, "config": {"max_steps": 201}})

    assert_error(response, 422, "max_steps_too_high", "201", "(200)", "ZERG_MAX_AGENT_STEPS")
    agent = make_agent(config={"max_steps": 200})
    response = client.patch(f"/api/agents/{agent['id']}", json={"config": {"max_steps": 500}})
    assert_error(response, 422, "max_steps_too_high", "ZERG_MAX_AGENT_STEPS")
    assert client.get(f"/api/agents/{agent['id']}").json() == agent
    with zerg_with(settings, max_agent_steps=500) as generous:
        response = generous.patch(f"/api/agents/{agent['id']}", json={"config": {"max_steps": 500}})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("schedule", "timezone"),
    [("0 0 31 2 *", "UTC"), ("0 0 30 2 *", "Europe/Paris"), ("0 0 31 4,6,9,11 *", "UTC")],
)
def test_a_schedule_that_never_fires_is_refused(
    client: httpx.Client, make_agent: AgentFactory, schedule: str, timezone: str
) -> None:
    body = {**VALID, "schedule": schedule, "timezone": timezone}

    response = client.post("/api/agents", json=body)

    assert_error(response, 422, "schedule_never_fires", schedule, "next 10 years", timezone)
    agent = make_agent(schedule="0 9 * * *")
    response = client.patch(
        f"/api/agents/{agent['id']}", json={"schedule": schedule, "timezone": timezone}
    )
    assert_error(response, 422, "schedule_never_fires", schedule)
    assert client.get(f"/api/agents/{agent['id']}").json() == agent


def test_a_schedule_that_fires_more_often_than_the_server_allows_is_refused(
    client: httpx.Client, settings: Settings
) -> None:
    # Every minute is the default floor (60 s), and fine.
    assert client.post("/api/agents", json={**VALID, "schedule": "* * * * *"}).status_code == 201

    with zerg_with(settings, min_schedule_interval_s=3600) as hourly:
        for schedule in ("*/5 * * * *", "0,59 0,23 * * 1,2", "0,30 9 * * *"):
            response = hourly.post("/api/agents", json={**VALID, "schedule": schedule})

            assert_error(
                response, 422, "schedule_too_frequent", schedule,
                "ZERG_MIN_SCHEDULE_INTERVAL_S (3600 s)", case=schedule,
            )  # fmt: skip
        agent = hourly.post("/api/agents", json={**VALID, "schedule": "0 * * * *"}).json()
        response = hourly.patch(f"/api/agents/{agent['id']}", json={"schedule": "*/10 * * * *"})
        assert_error(response, 422, "schedule_too_frequent", "600 s apart")


@pytest.mark.parametrize(
    "stored",
    ["0 0 31 2 *", "0 0 1 1 * 0 1999", "not cron at all", "0 0 29 2 *", "* * * * * *"],
)
def test_reading_a_stored_schedule_never_fails(
    client: httpx.Client, rows: Rows, stored: str
) -> None:
    """Schedules stored before the API checked them: the editor still answers."""
    agent_id = rows.agent(schedule=stored, timezone="Europe/Paris", run_on_schedule=False)

    response = client.get(f"/api/agents/{agent_id}/schedule", params={"count": 100})

    assert response.status_code == 200, response.text
    assert response.json()["schedule"] == stored
    assert client.get("/api/agents").status_code == 200
    assert client.get(f"/api/agents/{agent_id}").status_code == 200
    # Pausing always works; resuming checks the schedule again.
    paused = client.patch(f"/api/agents/{agent_id}", json={"run_on_schedule": False})
    assert paused.status_code == 200, paused.text
    resumed = client.patch(f"/api/agents/{agent_id}", json={"run_on_schedule": True})
    if stored == "0 0 29 2 *":
        assert resumed.status_code == 200, resumed.text
    else:
        assert resumed.status_code == 422, resumed.text


def test_a_deeply_nested_config_is_refused_and_the_list_keeps_answering(
    client: httpx.Client, make_agent: AgentFactory
) -> None:
    make_agent(name="kept")

    response = client.post("/api/agents", json={**VALID, "config": nested(900)})

    assert_error(response, 422, "validation_error", "config:", "more than 10 deep")
    listed = client.get("/api/agents")
    assert listed.status_code == 200
    assert [agent["name"] for agent in listed.json()["items"]] == ["kept"]


def test_the_openapi_schema_states_the_bounds(client: httpx.Client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    create = schemas["AgentCreate"]["properties"]

    assert create["system_instructions"]["maxLength"] == 100_000
    assert create["task_instructions"]["anyOf"][0]["maxLength"] == 100_000
    assert create["schedule"]["anyOf"][0]["maxLength"] == 200
    config = create["config"]
    assert config["type"] == "object" and config["additionalProperties"] is True
    keys = config["properties"]
    assert (keys["max_retries"]["minimum"], keys["max_retries"]["maximum"]) == (0, 10)
    assert keys["request_timeout_s"]["exclusiveMinimum"] == 0
    assert keys["request_timeout_s"]["maximum"] == 600
    assert keys["max_steps"]["minimum"] == 1
    assert keys["base_url"]["anyOf"][0]["maxLength"] == 2000
    assert keys["base_url"]["anyOf"][0]["pattern"].startswith("^https?://")
    update = schemas["AgentUpdate"]["properties"]
    assert update["system_instructions"]["anyOf"][0]["maxLength"] == 100_000


def test_a_run_takes_no_more_steps_than_the_server_allows(
    settings: Settings, rows: Rows, openai_server: FakeOpenAI
) -> None:
    """An agent stored with a higher max_steps than the server now allows: its run stops at
    the server's ceiling."""
    calls = iter(range(10))
    openai_server.set_policy(
        lambda body: ToolCall("calculator", {"expression": "1+1"}) if next(calls) < 5 else Text("2")
    )
    url = f"{openai_server.base_url}/v1"
    agent_id = rows.agent(
        model="openai:gpt-test",
        task_instructions="Add, again and again.",
        tools=["calculator"],
        config={"base_url": url, "max_retries": 0, "max_steps": 1000},
    )

    with zerg_with(settings, max_agent_steps=2, model_base_urls=url) as client:
        response = client.post(f"/api/agents/{agent_id}/task", params={"wait": "true"})

    assert response.json()["status"] == "failed", response.text
    assert openai_server.count() == 3  # two model-and-tool rounds, then the step limit
