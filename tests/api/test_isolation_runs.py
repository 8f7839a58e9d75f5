"""Owner isolation of runs and webhook triggers: another user's are 404, as if missing."""

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, ids
from tests.api.test_auth import DEMO, bearer, wait_for_auth_mode
from tests.api.test_webhooks import standard_headers
from zerg.db import Database
from zerg.services import users

MISSING = 2_000_000_000


@dataclass(frozen=True)
class Person:
    user_id: int
    headers: dict[str, str]


@dataclass(frozen=True)
class World:
    admin: Person
    a: Person
    b: Person
    a_agent: dict[str, Any]
    a_trigger: dict[str, Any]
    a_run: dict[str, Any]
    b_run: dict[str, Any]


def add_person(database: Database, name: str, *, admin: bool) -> Person:
    with database.session() as session:
        user = users.create_user(name, admin=admin, session=session)
        _, token = users.create_token(user, name="test", session=session)
        session.commit()
        return Person(user.id, bearer(token))


def agent_and_run(client: httpx.Client, who: Person) -> tuple[dict[str, Any], dict[str, Any]]:
    agent = client.post("/api/agents", json=DEMO, headers=who.headers)
    assert agent.status_code == 201, agent.text
    run = client.post(f"/api/agents/{agent.json()['id']}/task?wait=true", headers=who.headers)
    assert run.status_code == 200 and run.json()["status"] == "succeeded", run.text
    return agent.json(), run.json()


@pytest.fixture
def world(client: httpx.Client, database: Database) -> World:
    """An admin, and users A and B with an agent and a finished run each; A's agent has a
    trigger."""
    admin = add_person(database, "root", admin=True)
    a = add_person(database, "ada", admin=False)
    b = add_person(database, "bob", admin=False)
    wait_for_auth_mode(client)
    a_agent, a_run = agent_and_run(client, a)
    _, b_run = agent_and_run(client, b)
    trigger = client.post(f"/api/agents/{a_agent['id']}/triggers", json={}, headers=a.headers)
    assert trigger.status_code == 201, trigger.text
    return World(admin, a, b, a_agent, trigger.json(), a_run, b_run)


def assert_missing(response: httpx.Response, kind: str, object_id: int) -> None:
    """404 `not_found` with the very message a missing id gets."""
    assert_error(response, 404, "not_found")
    assert response.json()["detail"] == f"{kind} {object_id} does not exist"


def run_ids(client: httpx.Client, who: Person, **params: Any) -> list[int]:
    response = client.get("/api/runs", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return ids(response.json()["items"])


def test_another_users_run_is_missing(client: httpx.Client, world: World) -> None:
    a_run = world.a_run["id"]

    assert_missing(client.get(f"/api/runs/{a_run}", headers=world.b.headers), "run", a_run)
    assert_missing(client.get(f"/api/runs/{MISSING}", headers=world.b.headers), "run", MISSING)
    assert client.get(f"/api/runs/{a_run}", headers=world.a.headers).status_code == 200


def test_another_users_runs_are_in_no_list_filter(client: httpx.Client, world: World) -> None:
    b = world.b
    a_agent = world.a_agent["id"]

    assert run_ids(client, b) == [world.b_run["id"]]
    assert run_ids(client, b, agent_id=a_agent) == []
    assert run_ids(client, b, agent_id=MISSING) == []
    assert run_ids(client, b, owner_id=world.a.user_id) == []
    assert run_ids(client, b, owner_id=b.user_id) == [world.b_run["id"]]
    assert run_ids(client, b, status="succeeded", trigger="api") == [world.b_run["id"]]
    assert run_ids(client, world.a) == [world.a_run["id"]]


def test_an_admin_sees_every_run_and_filters_by_owner(client: httpx.Client, world: World) -> None:
    admin, a_run, b_run = world.admin, world.a_run["id"], world.b_run["id"]

    assert run_ids(client, admin) == [b_run, a_run]
    assert run_ids(client, admin, owner_id=world.a.user_id) == [a_run]
    assert run_ids(client, admin, owner_id=world.b.user_id) == [b_run]
    assert run_ids(client, admin, owner_id=admin.user_id) == []
    assert run_ids(client, admin, owner_id=MISSING) == []
    assert client.get(f"/api/runs/{a_run}", headers=admin.headers).status_code == 200


def test_another_users_agent_has_no_triggers_to_list_or_add(
    client: httpx.Client, world: World
) -> None:
    b, a_agent = world.b.headers, world.a_agent["id"]

    for agent_id in (a_agent, MISSING):
        listed = client.get(f"/api/agents/{agent_id}/triggers", headers=b)
        assert_missing(listed, "agent", agent_id)
        created = client.post(f"/api/agents/{agent_id}/triggers", json={}, headers=b)
        assert_missing(created, "agent", agent_id)

    mine = client.get(f"/api/agents/{a_agent}/triggers", headers=world.a.headers)
    assert ids(mine.json()["items"]) == [world.a_trigger["id"]]
    everyone = client.get(f"/api/agents/{a_agent}/triggers", headers=world.admin.headers)
    assert ids(everyone.json()["items"]) == [world.a_trigger["id"]]


def test_another_users_trigger_cannot_be_rotated_or_deleted(
    client: httpx.Client, world: World
) -> None:
    b, trigger = world.b.headers, world.a_trigger

    for trigger_id in (trigger["id"], MISSING):
        rotated = client.post(f"/api/triggers/{trigger_id}/rotate", headers=b)
        assert_missing(rotated, "trigger", trigger_id)
        deleted = client.delete(f"/api/triggers/{trigger_id}", headers=b)
        assert_missing(deleted, "trigger", trigger_id)

    # The trigger is still there, and its secret is the one A was given.
    body = json.dumps({"event": "still mine"}).encode()
    fired = client.post(
        trigger["url"], content=body, headers=standard_headers(trigger["secret"], body)
    )
    assert fired.status_code == 202, fired.text
    rotated = client.post(f"/api/triggers/{trigger['id']}/rotate", headers=world.a.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != trigger["secret"]


def test_an_admin_manages_any_trigger(client: httpx.Client, world: World) -> None:
    trigger_id = world.a_trigger["id"]
    admin = world.admin.headers

    assert client.post(f"/api/triggers/{trigger_id}/rotate", headers=admin).status_code == 200
    assert client.delete(f"/api/triggers/{trigger_id}", headers=admin).status_code == 204
    gone = client.post(f"/api/triggers/{trigger_id}/rotate", headers=world.a.headers)
    assert_missing(gone, "trigger", trigger_id)
