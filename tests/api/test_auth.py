"""Local mode (no users: loopback only) and auth mode (API tokens), over real HTTP."""

import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from tests.api.test_webhooks import standard_headers
from tests.support.server import serve_in_thread
from tests.support.waiting import wait_for
from zerg import clock
from zerg.api.app import create_app
from zerg.db import Database
from zerg.models import ApiToken, Run
from zerg.services import users
from zerg.settings import Settings

DEMO = {"name": "demo", "model": "scripted:demo", "task_instructions": "6 * 7?"}


def add_user(database: Database, name: str = "ada", *, admin: bool = True) -> str:
    """A user and a token of theirs; returns the token."""
    with database.session() as session:
        user = users.create_user(name, admin=admin, session=session)
        _, token = users.create_token(user, name="test", session=session)
        session.commit()
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for_auth_mode(client: httpx.Client) -> None:
    wait_for(lambda: client.get("/api/agents").status_code == 401, "auth mode", timeout_s=5)


def test_local_mode_serves_loopback_hosts_only(client: httpx.Client) -> None:
    assert client.get("/api/agents", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/api/me").json() == {
        "user_id": None,
        "name": "local",
        "is_admin": True,
        "mode": "local",
    }

    rebound = client.post("/api/agents", json=DEMO, headers={"Host": "attacker.example"})

    assert rebound.status_code == 421
    assert rebound.json()["code"] == "host_not_allowed"
    assert "zerg users create" in rebound.json()["detail"]
    assert client.get("/api/agents").json()["items"] == []
    assert client.get("/health", headers={"Host": "attacker.example"}).status_code == 200


def test_the_first_user_switches_auth_mode_on(client: httpx.Client, database: Database) -> None:
    agent = client.post("/api/agents", json=DEMO).json()
    token = add_user(database)

    wait_for_auth_mode(client)

    refused = client.get(f"/api/agents/{agent['id']}")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert "Bearer" in refused.json()["detail"]
    # With a token any Host is served: the token, not the network, is the guard now.
    mine = client.get(f"/api/agents/{agent['id']}", headers={**bearer(token), "Host": "zerg.lan"})
    assert mine.status_code == 200
    me = client.get("/api/me", headers=bearer(token)).json()
    assert me["name"] == "ada" and me["is_admin"] is True and me["mode"] == "token"
    with database.session() as session:  # the request recorded the token's use
        assert session.scalar(select(ApiToken.last_used_at)) is not None
    assert client.get("/health").status_code == 200


def test_auth_required_needs_a_token_before_any_user_exists(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", auth="required")
    with serve_in_thread(create_app(settings)) as url:
        answer = httpx.get(f"{url}/api/agents")

    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"


def test_revoked_expired_and_disabled_tokens_stop_working_at_once(
    client: httpx.Client, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    token = add_user(database)
    wait_for_auth_mode(client)
    with database.session() as session:
        other = users.create_user("bob", admin=False, session=session)
        _, expiring = users.create_token(other, expires_in=timedelta(hours=1), session=session)
        _, bobs = users.create_token(other, session=session)
        session.commit()
    caplog.set_level(logging.DEBUG)
    assert client.get("/api/agents", headers=bearer(token)).status_code == 200
    assert client.get("/api/agents", headers=bearer(expiring)).status_code == 200

    with database.session() as session:
        users.revoke_token(token[:20], session=session)
        session.execute(
            update(ApiToken)
            .where(ApiToken.prefix == expiring[:17])
            .values(expires_at=clock.now() - timedelta(seconds=1))
        )
        users.disable_user("bob", session=session)
        session.commit()

    for used, reason in ((token, "revoked"), (expiring, "expired"), (bobs, "disabled")):
        answer = client.get("/api/agents", headers=bearer(used))
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "unauthorized" and reason in answer.json()["detail"]
        assert used not in answer.text
    unknown = client.get("/api/agents", headers=bearer("zerg_" + "x" * 43))
    assert unknown.status_code == 401 and unknown.json()["detail"] == "unknown API token"
    for secret in (token, expiring, bobs):
        assert secret not in caplog.text


def test_a_delivery_needs_a_signature_not_a_token(client: httpx.Client, database: Database) -> None:
    token = add_user(database)
    wait_for_auth_mode(client)
    agent = client.post("/api/agents", json=DEMO, headers=bearer(token)).json()
    trigger = client.post(
        f"/api/agents/{agent['id']}/triggers", json={}, headers=bearer(token)
    ).json()

    body = b'{"event": "x"}'

    unsigned = client.post(trigger["url"], content=body)
    signed = client.post(
        trigger["url"], content=body, headers=standard_headers(trigger["secret"], body)
    )

    assert unsigned.status_code == 401 and unsigned.json()["code"] == "invalid_signature"
    assert signed.status_code == 202, signed.text
    assert signed.json()["trigger"] == "webhook"
    # The API itself still wants a token.
    assert client.get(f"/api/runs/{signed.json()['id']}").status_code == 401


def test_a_run_started_with_a_token_is_an_api_run_that_names_it(
    client: httpx.Client, database: Database
) -> None:
    token = add_user(database)
    wait_for_auth_mode(client)
    agent = client.post("/api/agents", json=DEMO, headers=bearer(token)).json()

    run = client.post(f"/api/agents/{agent['id']}/task?wait=true", headers=bearer(token)).json()

    assert run["trigger"] == "api" and run["status"] == "succeeded"
    with database.session() as session:
        token_id = session.scalar(select(Run.token_id).where(Run.id == run["id"]))
        assert token_id == session.scalar(select(ApiToken.id).where(ApiToken.name == "test"))
