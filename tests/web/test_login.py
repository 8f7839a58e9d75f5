"""Signing in to the dashboard, its session cookie, and CSRF, over real HTTP (no browser)."""

import re
from datetime import timedelta

import httpx
import pytest

from zerg import clock
from zerg.db import Database
from zerg.services import users
from zerg.web.routes.login import FAILURES_ALLOWED

PASSWORD = "correct horse battery"
DEMO = {"name": "demo", "model": "scripted:demo", "task_instructions": "6 * 7?"}


@pytest.fixture
def ada(database: Database) -> None:
    with database.session() as session:
        users.create_user("ada", admin=True, session=session)
        users.set_password("ada", PASSWORD, session=session)
        users.create_user("bob", admin=False, session=session)
        users.set_password("bob", PASSWORD, session=session)
        session.commit()


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]{64})"', page.text)
    assert match, page.text[:500]
    return match[1]


def sign_in(client: httpx.Client, name: str = "ada", password: str = PASSWORD, **extra: str):
    form = client.get("/login")
    return client.post(
        "/login",
        data={"username": name, "password": password, "csrf_token": csrf_of(form), **extra},
    )


def test_a_sign_in_sets_an_httponly_lax_cookie_and_goes_where_the_user_was_going(
    client: httpx.Client, ada: None
) -> None:
    assert client.get("/", headers={"Accept": "text/html"}).headers["location"] == "/login?next=%2F"

    response = sign_in(client, next="/runs?status=failed")

    assert response.status_code == 303
    assert response.headers["location"] == "/runs?status=failed"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("zerg_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served over plain HTTP here
    assert client.get("/").status_code == 200
    # The cookie is a session of the API too, for the dashboard's scripts.
    assert client.get("/api/me").json()["name"] == "ada"


def test_the_cookie_is_secure_when_served_over_https(client: httpx.Client, ada: None) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback (a reverse proxy that terminates TLS).
    form = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    browser_cookie = form.headers["set-cookie"]
    assert "Secure" in browser_cookie
    response = client.post(
        "/login",
        data={"username": "ada", "password": PASSWORD, "csrf_token": csrf_of(form)},
        # This client speaks plain HTTP to the proxy's side, so sends the Secure cookie by hand.
        headers={"X-Forwarded-Proto": "https", "Cookie": browser_cookie.split(";")[0]},
    )
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", "x"])
def test_a_sign_in_never_redirects_off_the_site(
    client: httpx.Client, ada: None, target: str
) -> None:
    assert sign_in(client, next=target).headers["location"] == "/"


def test_a_wrong_password_or_name_gets_the_same_answer(client: httpx.Client, ada: None) -> None:
    wrong_password = sign_in(client, password="not it at all")
    wrong_name = sign_in(client, name="nobody")
    for response in (wrong_password, wrong_name):
        assert response.status_code == 401
        assert "wrong user name or password" in response.text
        assert "zerg_session" not in response.headers.get("set-cookie", "")


def test_too_many_failed_sign_ins_must_wait(client: httpx.Client, ada: None) -> None:
    for _ in range(FAILURES_ALLOWED):
        assert sign_in(client, password="guess guess").status_code == 401

    refused = sign_in(client)  # even the right password, for now

    assert refused.status_code == 429
    assert "too many failed sign-ins" in refused.text


def test_a_sign_in_without_the_pages_csrf_token_is_refused(client: httpx.Client, ada: None) -> None:
    client.get("/login")
    response = client.post(
        "/login",
        data={"username": "ada", "password": PASSWORD},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 403
    assert "csrf_failed" in response.text
    assert "zerg_session" not in response.headers.get("set-cookie", "")


def test_signing_out_ends_the_session_on_the_server(client: httpx.Client, ada: None) -> None:
    sign_in(client)
    token = client.cookies["zerg_session"]
    csrf = csrf_of(client.get("/"))

    response = client.post("/logout", data={"csrf_token": csrf})

    assert response.headers["location"] == "/login"
    stolen = httpx.Client(base_url=str(client.base_url), cookies={"zerg_session": token})
    with stolen:
        assert stolen.get("/api/me").status_code == 401
        assert stolen.get("/", headers={"Accept": "text/html"}).status_code == 303


def test_a_session_ends_when_it_expires_or_its_user_is_disabled(
    client: httpx.Client, ada: None, database: Database
) -> None:
    sign_in(client)
    assert client.get("/api/me").status_code == 200
    with database.session() as session:
        users.disable_user("ada", session=session)
        session.commit()
    assert client.get("/api/me").status_code == 401

    sign_in(client, "bob")
    assert client.get("/api/me").json()["name"] == "bob"
    frozen = clock.now() + timedelta(days=15)
    clock.set_clock(lambda: frozen)
    try:
        assert client.get("/api/me").status_code == 401
    finally:
        clock.set_clock(None)


def test_an_api_change_with_the_cookie_needs_the_csrf_header(
    client: httpx.Client, ada: None
) -> None:
    sign_in(client)
    csrf = csrf_of(client.get("/"))

    refused = client.post("/api/agents", json=DEMO)
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    wrong = client.post("/api/agents", json=DEMO, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.json()["code"] == "csrf_failed"
    assert client.get("/api/agents").json()["items"] == []

    created = client.post("/api/agents", json=DEMO, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201


def test_a_change_asked_by_another_sites_page_is_refused(client: httpx.Client, ada: None) -> None:
    sign_in(client)
    csrf = csrf_of(client.get("/"))
    headers = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}

    refused = client.post("/api/agents", json=DEMO, headers=headers)

    assert refused.status_code == 403
    assert refused.json()["code"] == "origin_not_allowed"
    own = client.post("/api/agents", json=DEMO, headers={**headers, "Origin": str(client.base_url)})
    assert own.status_code == 201


def test_local_mode_forms_need_the_csrf_token_and_api_changes_a_same_site_origin(
    client: httpx.Client,
) -> None:
    page = client.get("/")
    assert page.status_code == 200  # local mode opens straight in
    assert client.get("/login").headers["location"] == "/"
    assert "zerg_browser" in client.cookies

    assert client.post("/demo", data={}).status_code == 403
    foreign = client.post("/api/agents", json=DEMO, headers={"Origin": "http://attacker.example"})
    assert foreign.json()["code"] == "origin_not_allowed"
    assert client.get("/api/agents").json()["items"] == []

    assert client.post("/demo", data={"csrf_token": csrf_of(page)}).status_code == 303
    assert [a["model"] for a in client.get("/api/agents").json()["items"]] == ["scripted:demo"]


def test_bearer_tokens_still_work_beside_a_cookie(
    client: httpx.Client, ada: None, database: Database
) -> None:
    with database.session() as session:
        _, token = users.create_token(users.get_user("ada", session=session), session=session)
        session.commit()
    sign_in(client, "bob")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).json()["name"] == "ada"
    # A token needs no CSRF token: a page of another site cannot send it.
    assert client.post("/api/agents", json=DEMO, headers=headers).status_code == 201
    assert client.get("/api/agents").json()["items"] == []  # bob's cookie: none of ada's
