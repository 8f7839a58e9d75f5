"""Owner isolation, route by route from the served OpenAPI schema: user B, with a valid token,
never reads, lists, starts, cancels or changes anything of user A's, and never gets a 5xx.
A route added later is walked too; one that takes a body needs an entry in `BODIES`."""

import re
from typing import Any

import httpx
import pytest

from tests.api.test_auth import add_user, bearer, wait_for_auth_mode
from zerg.db import Database
from zerg.services import users

MARK = "alices-private-thing"
# A plausible body for every operation that takes one, so that B's request is turned away by
# the ownership check, not by validation.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/agents"): {"name": "b", "model": "scripted:demo"},
    ("patch", "/api/agents/{agent_id}"): {"name": "taken over"},
    ("post", "/api/threads"): {"agent_id": "{agent_id}"},
    ("patch", "/api/threads/{thread_id}"): {"title": "taken over"},
    ("post", "/api/agents/{agent_id}/triggers"): {"scheme": "standard"},
    ("post", "/api/threads/{thread_id}/messages"): {"content": "taken over"},
}
# The routes outside /api, which the walk skips: they serve no user's objects.
NOT_A_USERS_ROUTE = {
    "/health",
    "/hooks/{public_id}",  # webhook deliveries, authenticated by their signature
}


@pytest.fixture
def alice(client: httpx.Client, database: Database) -> dict[str, Any]:
    """User A's objects, made over HTTP with A's token: an agent with a run, a thread and a
    trigger, and a second agent with a notification URL (so it has a notify secret)."""
    add_user(database, "root", admin=True)
    wait_for_auth_mode(client)
    with database.session() as session:
        user = users.create_user("alice", admin=False, session=session)
        _, token = users.create_token(user, session=session)
        session.commit()
        user_id = user.id
    auth = bearer(token)
    agent = client.post(
        "/api/agents",
        json={"name": MARK, "model": "scripted:demo", "task_instructions": MARK},
        headers=auth,
    ).json()
    client.post(
        "/api/agents",
        json={"name": MARK, "model": "scripted:echo", "notify_url": "https://hooks.example/z"},
        headers=auth,
    ).raise_for_status()
    run = client.post(f"/api/agents/{agent['id']}/task?wait=true", headers=auth).json()
    assert run["status"] == "succeeded", run
    thread = client.post(
        "/api/threads", json={"agent_id": agent["id"], "title": MARK}, headers=auth
    ).json()
    trigger = client.post(f"/api/agents/{agent['id']}/triggers", json={}, headers=auth).json()
    return {
        "auth": auth,
        "user_id": user_id,
        "agent_id": agent["id"],
        "thread_id": thread["id"],
        "run_id": run["id"],
        "trigger_id": trigger["id"],
    }


def operations(client: httpx.Client) -> list[tuple[str, str, dict[str, Any]]]:
    paths = client.get("/openapi.json").json()["paths"]
    outside = {path for path in paths if not path.startswith("/api/")}
    assert outside == NOT_A_USERS_ROUTE, "a route outside /api is not walked: is it a user's?"
    return [
        (method, path, operation)
        for path, methods in paths.items()
        if path.startswith("/api/")
        for method, operation in methods.items()
    ]


def fill(template: Any, ids: dict[str, Any]) -> Any:
    """`template` with each `{name}` replaced by A's id of that name."""
    if isinstance(template, dict):
        return {key: fill(value, ids) for key, value in template.items()}
    if isinstance(template, str) and re.fullmatch(r"\{\w+\}", template):
        return ids[template[1:-1]]
    if isinstance(template, str):
        return re.sub(r"\{(\w+)\}", lambda m: str(ids[m[1]]), template)
    return template


def test_another_users_objects_are_not_found_on_every_route(
    client: httpx.Client, database: Database, alice: dict[str, Any]
) -> None:
    with database.session() as session:
        bob = users.create_user("bob", admin=False, session=session)
        _, token = users.create_token(bob, session=session)
        session.commit()
    walked = []
    for method, path, operation in operations(client):
        has_body = "requestBody" in operation
        assert not has_body or (method, path) in BODIES, f"add a body for {method} {path}"
        query = {p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"}
        # List filters name A's objects (and A, by owner): still nothing of A's.
        params = {name: alice[name] for name in query & {"agent_id", "thread_id", "run_id"}}
        if "owner_id" in query:
            params["owner_id"] = alice["user_id"]
        answer = client.request(
            method,
            fill(path, alice),
            params=params,
            json=fill(BODIES[(method, path)], alice) if has_body else None,
            headers=bearer(token),
        )
        walked.append((method, path, answer.status_code))
        assert answer.status_code < 500, (method, path, answer.text)
        assert MARK not in answer.text, (method, path, answer.text)
        if "{" in path:
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["code"] == "not_found", (method, path, answer.text)
    assert len(walked) >= 20, walked

    # Nothing of A's changed, and A still has it all.
    auth = alice["auth"]
    agent = client.get(f"/api/agents/{alice['agent_id']}", headers=auth).json()
    assert agent["name"] == MARK
    assert client.get(f"/api/threads/{alice['thread_id']}", headers=auth).json()["title"] == MARK
    messages = client.get(f"/api/threads/{alice['thread_id']}/messages", headers=auth).json()
    assert [m["role"] for m in messages["items"]] == ["system"]  # B sent no chat message
    runs = client.get(f"/api/runs?agent_id={alice['agent_id']}", headers=auth).json()["items"]
    assert [r["id"] for r in runs] == [alice["run_id"]]  # B started none
    triggers = client.get(f"/api/agents/{alice['agent_id']}/triggers", headers=auth).json()
    assert [t["id"] for t in triggers["items"]] == [alice["trigger_id"]]


def test_an_admin_sees_every_owner_and_filters_by_owner(
    client: httpx.Client, database: Database, alice: dict[str, Any]
) -> None:
    with database.session() as session:
        admin = users.get_user("root", session=session)
        _, token = users.create_token(admin, session=session)
        session.commit()
    everything = client.get("/api/agents", headers=bearer(token)).json()["items"]
    theirs = client.get(f"/api/agents?owner_id={alice['user_id']}", headers=bearer(token)).json()[
        "items"
    ]

    assert {a["name"] for a in everything} == {MARK}
    assert len(theirs) == 2 and {a["owner_id"] for a in theirs} == {alice["user_id"]}
    run = client.get(f"/api/runs/{alice['run_id']}", headers=bearer(token))
    assert run.status_code == 200
