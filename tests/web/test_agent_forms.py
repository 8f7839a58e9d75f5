"""The agent editor's routes over real HTTP (no browser): the schedule preview, the forms'
errors and CSRF check, secrets shown once, and owner isolation."""

import itertools
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.server import serve_in_thread
from zerg.api.app import create_app
from zerg.db import Database
from zerg.services import users
from zerg.settings import Settings

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html"}
AGENT_FORM = {
    "name": "Morning report",
    "model": "scripted:demo",
    "system_instructions": "You report.",
    "task_instructions": "Work out 6 * 7.",
    "tools": ["calculator", "current_time"],
    "concurrency": "queue",
    "timeout_s": "120",
    "schedule": "0 9 * * 1-5",
    "timezone": "Europe/Paris",
    "missed_fires": "skip",
    "notify_url": "",
    "config": '{"max_steps": 5}',
}


def csrf_of(page: httpx.Response) -> str:
    match = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert match, page.text[:500]
    return match[1]


def post_form(
    client: httpx.Client, path: str, data: dict[str, Any], page: str = "/agents/new"
) -> httpx.Response:
    """POST `data` as the form on `page` does, with that page's CSRF token."""
    token = csrf_of(client.get(page, headers=HTML))
    return client.post(path, data={**data, "csrf_token": token}, headers=HTML)


def field_error(page: httpx.Response, field: str) -> str:
    """The error shown next to `field`, checking that the input points at it."""
    tag = re.search(rf'<(?:input|textarea|select)[^>]*\bid="{field}"[^>]*>', page.text)
    assert tag, f"no input {field}"
    assert 'aria-invalid="true"' in tag[0] and f"{field}-error" in tag[0], tag[0]
    message = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', page.text)
    assert message, f"no error next to {field}"
    return message[1]


@pytest.mark.parametrize(("timezone", "shown"), [("Asia/Tokyo", "09:00 JST"), ("UTC", "09:00 UTC")])
def test_the_preview_lists_the_next_five_fires_in_the_agent_s_time_zone(
    client: httpx.Client, timezone: str, shown: str
) -> None:
    response = client.get(
        "/agents/schedule-preview", params={"schedule": "0 9 * * *", "timezone": timezone}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == timezone and len(body["shown"]) == 5
    assert all(text.endswith(shown) for text in body["shown"]), body["shown"]
    fires = [datetime.fromisoformat(t) for t in body["fire_times"]]
    assert fires == sorted(fires) and all(f > datetime.now(UTC) for f in fires)
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(fires)} == {86400}


def test_the_preview_of_no_schedule_is_empty(client: httpx.Client) -> None:
    response = client.get("/agents/schedule-preview", params={"schedule": "", "timezone": "UTC"})

    assert response.status_code == 200
    assert response.json()["fire_times"] == [] and response.json()["shown"] == []


@pytest.mark.parametrize(
    ("params", "code", "says"),
    [
        ({"schedule": "0 9 * *", "timezone": "UTC"}, "invalid_schedule", "not a valid cron"),
        ({"schedule": "* * * * * *", "timezone": "UTC"}, "invalid_schedule", "standard 5 fields"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus"}, "invalid_timezone", "IANA"),
        ({"schedule": "0 9 * * *", "timezone": "America"}, "invalid_timezone", "IANA"),
        ({"schedule": "0 0 30 2 *", "timezone": "UTC"}, "schedule_never_fires", "never run"),
    ],
)
def test_an_invalid_preview_is_a_422_that_says_why(
    client: httpx.Client, params: dict[str, str], code: str, says: str
) -> None:
    response = client.get("/agents/schedule-preview", params=params)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert says in response.json()["detail"]


def test_the_preview_says_when_the_server_would_refuse_the_schedule(settings: Settings) -> None:
    hourly_at_most = create_app(settings.model_copy(update={"min_schedule_interval_s": 3600}))
    with serve_in_thread(hourly_at_most) as url, httpx.Client(base_url=url) as client:
        response = client.get(
            "/agents/schedule-preview", params={"schedule": "*/30 * * * *", "timezone": "UTC"}
        )

    assert response.status_code == 422
    assert response.json()["code"] == "schedule_too_frequent"
    assert "ZERG_MIN_SCHEDULE_INTERVAL_S (3600 s)" in response.json()["detail"]


def test_a_form_post_without_its_csrf_token_is_refused(client: httpx.Client) -> None:
    client.get("/agents/new", headers=HTML)  # the browser cookie the token would be bound to

    response = client.post("/agents/new", data=AGENT_FORM, headers=HTML)

    assert response.status_code == 403
    assert "CSRF token" in response.text
    assert client.get("/api/agents").json()["items"] == []


def test_errors_show_next_to_their_fields_and_keep_what_was_typed(client: httpx.Client) -> None:
    typed = AGENT_FORM | {"name": "  ", "schedule": "0 25 * * *", "config": "{oops"}

    page = post_form(client, "/agents/new", typed)

    assert page.status_code == 422
    assert field_error(page, "name") == "Required."
    assert "not a valid cron expression" in field_error(page, "schedule")
    assert field_error(page, "config").startswith("Not valid JSON")
    assert 'value="0 25 * * *"' in page.text and ">{oops</textarea>" in page.text
    assert 'value="Europe/Paris"' in page.text and 'value="120"' in page.text
    assert re.search(r'value="current_time"\s+checked', page.text)
    assert client.get("/api/agents").json()["items"] == []


def test_the_service_s_refusals_show_next_to_their_fields(client: httpx.Client) -> None:
    typed = AGENT_FORM | {"schedule": "0 0 30 2 *", "config": '{"max_steps": 100000}'}

    page = post_form(client, "/agents/new", typed)

    assert page.status_code == 422
    # The service checks one thing at a time: the config first.
    assert "max_steps" in field_error(page, "config")
    page = post_form(client, "/agents/new", typed | {"config": "{}"})
    assert "never run the agent" in field_error(page, "schedule")


def test_a_valid_form_creates_the_agent_and_its_page_shows_it(client: httpx.Client) -> None:
    response = post_form(client, "/agents/new", AGENT_FORM)

    assert response.status_code == 303
    agent_id = int(response.headers["location"].split("/")[2].split("?")[0])
    agent = client.get(f"/api/agents/{agent_id}").json()
    assert agent["name"] == "Morning report" and agent["tools"] == ["calculator", "current_time"]
    assert (agent["schedule"], agent["timezone"], agent["missed_fires"]) == (
        "0 9 * * 1-5",
        "Europe/Paris",
        "skip",
    )
    assert (agent["concurrency"], agent["timeout_s"], agent["config"]) == (
        "queue",
        120,
        {"max_steps": 5},
    )
    assert agent["notify_url"] is None and agent["run_on_schedule"] is False  # unticked
    page = client.get(f"/agents/{agent_id}", headers=HTML)
    assert 'value="Morning report"' in page.text and "/runs?agent_id=" in page.text


def test_editing_saves_every_field_and_blank_clears_the_schedule(client: httpx.Client) -> None:
    agent_id = client.post("/api/agents", json={"name": "A", "model": "scripted:echo"}).json()["id"]
    page = f"/agents/{agent_id}"

    response = post_form(client, page, AGENT_FORM | {"schedule": "", "name": "B"}, page)

    assert response.status_code == 303
    agent = client.get(f"/api/agents/{agent_id}").json()
    assert agent["name"] == "B" and agent["schedule"] is None and agent["next_run_at"] is None


def test_a_trigger_s_secret_is_shown_once(client: httpx.Client) -> None:
    agent_id = client.post("/api/agents", json={"name": "A", "model": "scripted:echo"}).json()["id"]
    page = f"/agents/{agent_id}"

    created = post_form(client, f"{page}/triggers", {"scheme": "github"}, page)

    assert created.status_code == 200
    secret = re.search(r'class="secret" value="([0-9a-f]{64})"', created.text)
    assert secret, created.text
    trigger = client.get(f"/api/agents/{agent_id}/triggers").json()["items"][0]
    assert trigger["scheme"] == "github" and trigger["url"] in created.text
    later = client.get(page, headers=HTML)
    assert trigger["url"] in later.text and secret[1] not in later.text
    rotated = post_form(client, f"{page}/triggers/{trigger['id']}/rotate", {}, page)
    new_secret = re.search(r'class="secret" value="([0-9a-f]{64})"', rotated.text)
    assert new_secret and new_secret[1] != secret[1]
    assert "previous secret keeps working" in rotated.text


@pytest.fixture
def two_users(database: Database) -> None:
    with database.session() as session:
        for name in ("ada", "bob"):
            users.create_user(name, admin=False, session=session)
            users.set_password(name, PASSWORD, session=session)
        session.commit()


def sign_in(client: httpx.Client, name: str) -> None:
    form = client.get("/login", headers=HTML)
    data = {"username": name, "password": PASSWORD, "csrf_token": csrf_of(form)}
    assert client.post("/login", data=data).status_code == 303


def test_another_user_s_agent_is_not_found(
    client: httpx.Client, base_url: str, two_users: None
) -> None:
    sign_in(client, "ada")
    created = post_form(client, "/agents/new", AGENT_FORM)
    page = created.headers["location"].split("?")[0]
    with httpx.Client(base_url=base_url) as bob:
        sign_in(bob, "bob")

        response = bob.get(page, headers=HTML)
        changed = post_form(bob, page, AGENT_FORM | {"name": "mine now"}, "/agents/new")
        deleted = post_form(bob, f"{page}/delete", {}, "/agents/new")

    assert response.status_code == 404 and "does not exist" in response.text
    assert "Morning report" not in response.text
    assert changed.status_code == 404 and deleted.status_code == 404
    assert client.get(page, headers=HTML).status_code == 200
    assert 'value="Morning report"' in client.get(page, headers=HTML).text
