"""Owner isolation of agents, threads and messages, route by route: user B is answered about
user A's objects exactly as about missing ones, lists never show them, and nothing of A's
changes; an admin sees every owner's and filters by owner."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, ids
from tests.api.test_auth import add_user, bearer, wait_for_auth_mode
from zerg.db import Database

MISSING = 987_654  # an id no object has


@dataclass
class User:
    id: int
    auth: dict[str, str]


@dataclass
class Owned:
    """A user's objects: two agents (the first with a schedule and a notification URL) and
    three chat threads, oldest first: two with the first agent (so the oldest is no longer its
    active one) and one with the second."""

    agents: list[int]
    threads: list[int]


@dataclass
class World:
    admin: User
    ann: User
    ben: User
    anns: Owned
    bens: Owned


def user(client: httpx.Client, database: Database, name: str, *, admin: bool = False) -> User:
    auth = bearer(add_user(database, name, admin=admin))
    wait_for_auth_mode(client)
    me = client.get("/api/me", headers=auth)
    assert me.status_code == 200, me.text
    return User(id=me.json()["user_id"], auth=auth)


def make_objects(client: httpx.Client, owner: User) -> Owned:
    first = {
        "name": "first",
        "model": "scripted:echo",
        "schedule": "0 7 * * *",
        "notify_url": "https://hooks.example.com/zerg",
    }
    second = {"name": "second", "model": "scripted:echo"}
    agents = [created(client, "/api/agents", body, owner)["id"] for body in (first, second)]
    threads = [
        created(client, "/api/threads", {"agent_id": agent}, owner)["id"]
        for agent in (agents[0], agents[0], agents[1])
    ]
    return Owned(agents=agents, threads=threads)


def created(client: httpx.Client, url: str, body: dict[str, Any], by: User) -> dict[str, Any]:
    response = client.post(url, json=body, headers=by.auth)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
def world(client: httpx.Client, database: Database) -> World:
    admin = user(client, database, "root", admin=True)
    ann, ben = user(client, database, "ann"), user(client, database, "ben")
    return World(admin, ann, ben, make_objects(client, ann), make_objects(client, ben))


def snapshot(client: httpx.Client, owner: User, owned: Owned) -> dict[str, Any]:
    """Everything the owner can read about their objects."""

    def get(url: str) -> Any:
        response = client.get(url, headers=owner.auth)
        assert response.status_code == 200, response.text
        return response.json()

    return {
        "agents": get("/api/agents"),
        "threads": get("/api/threads"),
        **{f"agent {a}": get(f"/api/agents/{a}") for a in owned.agents},
        **{f"schedule {a}": get(f"/api/agents/{a}/schedule") for a in owned.agents},
        "secret": get(f"/api/agents/{owned.agents[0]}/notify-secret"),
        **{f"thread {t}": get(f"/api/threads/{t}") for t in owned.threads},
        **{f"messages {t}": get(f"/api/threads/{t}/messages") for t in owned.threads},
    }


def assert_like_missing(
    client: httpx.Client, method: str, url: str, object_id: int, by: User, **kw: Any
) -> None:
    """The answer about another user's object (`url` with `{id}`) is the answer about a
    missing one, id aside."""
    theirs = client.request(method, url.format(id=object_id), headers=by.auth, **kw)
    missing = client.request(method, url.format(id=MISSING), headers=by.auth, **kw)
    detail = assert_error(theirs, 404, "not_found", case=(method, url, kw))
    assert_error(missing, 404, "not_found", case=(method, url, kw))
    expected = missing.json()["detail"].replace(str(MISSING), str(object_id))
    assert detail == expected, (method, url, kw)


AGENT_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "", {}),
    ("GET", "/schedule", {}),
    ("GET", "/schedule", {"params": {"count": 3}}),
    ("GET", "/notify-secret", {}),  # even for an agent without one: not `no_notify_url`
    ("PATCH", "", {"json": {"name": "taken over"}}),
    ("PATCH", "", {"json": {"run_on_schedule": False, "notify_url": None}}),
    ("DELETE", "", {}),
]


def test_another_users_agents_are_not_found_on_every_route(
    client: httpx.Client, world: World
) -> None:
    before = snapshot(client, world.ann, world.anns)

    for agent in world.anns.agents:
        for method, tail, kw in AGENT_ROUTES:
            assert_like_missing(client, method, "/api/agents/{id}" + tail, agent, world.ben, **kw)
        refused = client.post("/api/threads", json={"agent_id": agent}, headers=world.ben.auth)
        missing = client.post("/api/threads", json={"agent_id": MISSING}, headers=world.ben.auth)
        detail = assert_error(refused, 404, "not_found")
        assert detail == missing.json()["detail"].replace(str(MISSING), str(agent))

    assert snapshot(client, world.ann, world.anns) == before


THREAD_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "", {}),
    ("GET", "/messages", {}),
    ("GET", "/messages", {"params": {"limit": 1}}),
    ("PATCH", "", {"json": {"title": "taken over"}}),
    ("PATCH", "", {"json": {"active": True}}),
    ("PATCH", "", {"json": {"active": False}}),
    ("DELETE", "", {}),
]


def test_another_users_threads_and_messages_are_not_found_on_every_route(
    client: httpx.Client, world: World
) -> None:
    before = snapshot(client, world.ann, world.anns)

    for thread in world.anns.threads:
        for method, tail, kw in THREAD_ROUTES:
            url = "/api/threads/{id}" + tail
            assert_like_missing(client, method, url, thread, world.ben, **kw)

    assert snapshot(client, world.ann, world.anns) == before


def test_lists_show_only_the_callers_own_objects_whatever_the_filter(
    client: httpx.Client, world: World
) -> None:
    def listed(url: str, **params: Any) -> list[int]:
        response = client.get(url, params=params, headers=world.ben.auth)
        assert response.status_code == 200, response.text
        return ids(response.json()["items"])

    bens_threads = sorted(world.bens.threads, reverse=True)
    assert listed("/api/agents") == world.bens.agents
    assert listed("/api/agents", limit=1, owner_id=world.ben.id) == world.bens.agents[:1]
    assert listed("/api/agents", owner_id=world.ann.id) == []
    assert listed("/api/agents", owner_id=world.admin.id) == []
    not_an_id = client.get("/api/agents", params={"owner_id": 0}, headers=world.ben.auth)
    assert_error(not_an_id, 422, "validation_error", "owner_id")
    assert listed("/api/threads") == bens_threads
    assert listed("/api/threads", thread_type="chat") == bens_threads
    for agent in world.anns.agents:
        # A list filter naming another user's agent is answered as for a missing agent.
        assert listed("/api/threads", agent_id=agent) == listed("/api/threads", agent_id=MISSING)
        assert listed("/api/threads", agent_id=agent) == []
        assert listed("/api/threads", agent_id=agent, thread_type="chat") == []
    assert listed("/api/threads", agent_id=world.bens.agents[1]) == world.bens.threads[2:]


def test_new_agents_belong_to_their_creator_who_cannot_give_them_away(
    client: httpx.Client, world: World
) -> None:
    agents = client.get("/api/agents", headers=world.ann.auth).json()["items"]
    assert {agent["owner_id"] for agent in agents} == {world.ann.id}
    before = snapshot(client, world.ben, world.bens)

    handed = {"name": "x", "model": "scripted:echo", "owner_id": world.ben.id}
    posted = client.post("/api/agents", json=handed, headers=world.ann.auth)
    patched = client.patch(
        f"/api/agents/{agents[0]['id']}", json={"owner_id": world.ben.id}, headers=world.ann.auth
    )

    for response in (posted, patched):
        assert_error(response, 422, "validation_error", "owner_id")
    assert client.get("/api/agents", headers=world.ann.auth).json()["items"] == agents
    assert snapshot(client, world.ben, world.bens) == before


def test_an_admin_sees_every_owner_and_filters_by_owner(client: httpx.Client, world: World) -> None:
    def listed(url: str, **params: Any) -> list[int]:
        response = client.get(url, params=params, headers=world.admin.auth)
        assert response.status_code == 200, response.text
        return ids(response.json()["items"])

    everyones = world.anns.agents + world.bens.agents
    assert listed("/api/agents") == everyones
    assert listed("/api/agents", owner_id=world.ann.id) == world.anns.agents
    assert listed("/api/agents", owner_id=world.ben.id) == world.bens.agents
    assert listed("/api/agents", owner_id=world.admin.id) == []
    assert listed("/api/threads") == sorted(world.anns.threads + world.bens.threads, reverse=True)
    assert listed("/api/threads", agent_id=world.anns.agents[0]) == world.anns.threads[1::-1]

    agent, thread = world.anns.agents[0], world.anns.threads[0]
    auth = world.admin.auth
    assert client.get(f"/api/agents/{agent}", headers=auth).json()["owner_id"] == world.ann.id
    assert client.get(f"/api/agents/{agent}/notify-secret", headers=auth).status_code == 200
    assert client.get(f"/api/threads/{thread}/messages", headers=auth).status_code == 200
    renamed = client.patch(f"/api/threads/{thread}", json={"title": "by admin"}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    # An admin's thread on another user's agent belongs to that agent's owner.
    thread = created(client, "/api/threads", {"agent_id": agent}, world.admin)["id"]
    assert client.get(f"/api/threads/{thread}", headers=world.ann.auth).status_code == 200
    assert client.get(f"/api/threads/{thread}", headers=world.ben.auth).status_code == 404
