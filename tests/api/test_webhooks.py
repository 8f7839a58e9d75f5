"""Inbound webhooks: Standard Webhooks and GitHub signatures, replays, rotation, limits."""

import base64
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update
from standardwebhooks import Webhook

from tests.api.helpers import FrozenClock, assert_error
from tests.support.waiting import wait_for
from zerg import clock
from zerg.db import Database
from zerg.models import Trigger


def make_agent(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "hook",
        "model": "scripted:echo",
        "task_instructions": "Triage this event.",
        **fields,
    }
    return dict(client.post("/api/agents", json=body).json())


def make_trigger(client: httpx.Client, agent_id: int, scheme: str = "standard") -> dict[str, Any]:
    response = client.post(f"/api/agents/{agent_id}/triggers", json={"scheme": scheme})
    assert response.status_code == 201, response.text
    return dict(response.json())


def standard_headers(
    secret: str, body: bytes, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def fire(
    client: httpx.Client, trigger: dict[str, Any], body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return client.post(trigger["url"], content=body, headers=headers)


def wait_finished(client: httpx.Client, run_id: int) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run = dict(client.get(f"/api/runs/{run_id}").json())
        return run if run["status"] not in ("queued", "running") else None

    return wait_for(finished, f"run {run_id} to finish", timeout_s=20)


def test_a_signed_delivery_starts_a_webhook_run_with_the_payload(client: httpx.Client) -> None:
    agent = make_agent(client)
    trigger = make_trigger(client, agent["id"])
    body = json.dumps({"action": "opened", "issue": {"number": 7}}).encode()

    response = fire(client, trigger, body, standard_headers(trigger["secret"], body))

    assert response.status_code == 202, response.text
    run = wait_finished(client, response.json()["id"])
    assert run["status"] == "succeeded" and run["trigger"] == "webhook"
    thread = client.get(f"/api/threads/{run['thread_id']}").json()
    assert thread["thread_type"] == "webhook"
    messages = client.get(f"/api/threads/{run['thread_id']}/messages").json()["items"]
    user = messages[1]["content"]
    assert user.startswith("Triage this event.\n\n")
    payload = user.split("<payload>\n", 1)[1].split("\n</payload>", 1)[0]
    assert json.loads(payload) == {"action": "opened", "issue": {"number": 7}}
    listed = client.get(f"/api/agents/{agent['id']}/triggers").json()["items"]
    assert listed[0]["last_fired_at"] is not None


def test_secret_is_shown_once_and_url_points_at_the_hook(client: httpx.Client) -> None:
    agent = make_agent(client)
    trigger = make_trigger(client, agent["id"])

    assert trigger["secret"].startswith("whsec_")
    assert len(base64.b64decode(trigger["secret"].removeprefix("whsec_"))) == 32
    assert urlsplit(trigger["url"]).path == f"/hooks/{trigger['public_id']}"
    listed = client.get(f"/api/agents/{agent['id']}/triggers").json()
    assert listed["next_cursor"] is None
    assert [t["id"] for t in listed["items"]] == [trigger["id"]]
    assert listed["items"][0]["url"] == trigger["url"]
    assert listed["items"][0]["public_id"] == trigger["public_id"]
    assert "secret" not in listed["items"][0]
    assert client.post("/api/agents/999/triggers", json={}).status_code == 404
    bad = client.post(f"/api/agents/{agent['id']}/triggers", json={"scheme": "svix"})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


def test_a_signature_made_by_hand_per_the_spec_is_accepted(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b'{"hello": "world"}'
    timestamp = str(int(time.time()))
    key = base64.b64decode(trigger["secret"].removeprefix("whsec_"))
    digest = hmac.new(key, f"msg_x.{timestamp}.".encode() + body, hashlib.sha256).digest()
    good = "v1," + base64.b64encode(digest).decode()
    headers = {
        "webhook-id": "msg_x",
        "webhook-timestamp": timestamp,
        # Several signatures may be sent; one matching is enough.
        "webhook-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} {good}",
    }

    assert fire(client, trigger, body, headers).status_code == 202


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "missing_signature", "missing_id", "other_secret", "garbage"],
)
def test_bad_signatures_are_401_and_start_nothing(client: httpx.Client, tamper: str) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b'{"n": 1}'
    headers = standard_headers(trigger["secret"], body)
    if tamper == "body":
        body = b'{"n": 2}'
    elif tamper == "signature":
        headers["webhook-signature"] = headers["webhook-signature"][:-6] + "AAAAA="
    elif tamper == "missing_signature":
        del headers["webhook-signature"]
    elif tamper == "missing_id":
        del headers["webhook-id"]
    elif tamper == "other_secret":
        headers = standard_headers("whsec_" + base64.b64encode(b"k" * 32).decode(), body)
    else:
        headers["webhook-signature"] = "not-a-signature"

    response = fire(client, trigger, body, headers)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert client.get("/api/runs").json()["items"] == []


def test_a_stale_timestamp_is_401(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b"{}"
    old = datetime.now(UTC) - timedelta(seconds=301)

    response = fire(client, trigger, body, standard_headers(trigger["secret"], body, at=old))

    assert response.status_code == 401
    assert response.json()["code"] == "stale_timestamp"
    assert "300 s" in response.json()["detail"]


def test_a_replayed_delivery_returns_the_first_run(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b'{"n": 1}'
    first = fire(client, trigger, body, standard_headers(trigger["secret"], body, "msg_9"))
    wait_finished(client, first.json()["id"])

    again = fire(client, trigger, body, standard_headers(trigger["secret"], body, "msg_9"))

    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get("/api/runs").json()["items"]) == 1


def test_an_oversized_body_is_413(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b'{"blob": "' + b"x" * (256 * 1024) + b'"}'

    response = fire(client, trigger, body, standard_headers(trigger["secret"], body))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert client.get("/api/runs").json()["items"] == []


def test_rotation_keeps_the_old_secret_for_the_grace_period(
    client: httpx.Client, database: Database
) -> None:
    trigger = make_trigger(client, make_agent(client, concurrency="queue")["id"])
    old_secret = trigger["secret"]

    rotated = client.post(f"/api/triggers/{trigger['id']}/rotate").json()

    assert rotated["secret"] != old_secret and rotated["secret"].startswith("whsec_")
    valid_until = datetime.fromisoformat(rotated["previous_secret_valid_until"])
    assert valid_until > clock.now() + timedelta(hours=23)
    for n, secret in enumerate((rotated["secret"], old_secret)):
        body = json.dumps({"n": n}).encode()
        headers = standard_headers(secret, body, f"msg_r{n}")
        assert fire(client, trigger, body, headers).status_code == 202
    with database.session() as session:
        session.execute(
            update(Trigger).values(previous_secret_expires_at=clock.now() - timedelta(seconds=1))
        )
        session.commit()
    body = b'{"n": 9}'
    expired = fire(client, trigger, body, standard_headers(old_secret, body, "msg_r9"))
    assert expired.status_code == 401


def test_github_scheme(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"], scheme="github")
    body = b'{"zen": "Keep it logically awesome."}'
    signature = hmac.new(trigger["secret"].encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": f"sha256={signature}",
        "X-GitHub-Delivery": "d-1",
        "X-GitHub-Event": "ping",
        "content-type": "application/json",
    }

    first = fire(client, trigger, body, headers)
    again = fire(client, trigger, body, headers)
    wrong = fire(client, trigger, body, {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64})
    missing = fire(client, trigger, body, {"X-GitHub-Delivery": "d-2"})

    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_signature"
    assert missing.status_code == 401


def test_the_url_holds_a_random_public_id_not_the_trigger_id(client: httpx.Client) -> None:
    agent = make_agent(client)
    triggers = [make_trigger(client, agent["id"]) for _ in range(3)]

    assert len({trigger["public_id"] for trigger in triggers}) == 3
    for trigger in triggers:
        # 24 random bytes in URL-safe base64; the sequential id appears nowhere in the URL.
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", trigger["public_id"]), trigger
        assert urlsplit(trigger["url"]).path == f"/hooks/{trigger['public_id']}"


def test_an_unknown_public_id_is_404(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b"{}"
    unknown = "A" * len(trigger["public_id"])
    headers = standard_headers(trigger["secret"], body)

    response = client.post(f"/hooks/{unknown}", content=body, headers=headers)

    assert_error(response, 404, "not_found", "no trigger")
    assert unknown not in response.text
    for guess in (str(trigger["id"]), "", trigger["public_id"][:-1], trigger["public_id"] + "x"):
        assert client.post(f"/hooks/{guess}", content=body).status_code == 404, guess


def test_the_old_delivery_path_is_gone(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = b"{}"
    headers = standard_headers(trigger["secret"], body)

    for path in (f"/api/triggers/{trigger['id']}/fire", f"/api/hooks/{trigger['public_id']}"):
        response = client.post(path, content=body, headers=headers)
        assert_error(response, 404, "not_found", case=path)
    assert client.get("/api/runs").json()["items"] == []


def test_unknown_trigger_and_deleted_agent_are_404(client: httpx.Client) -> None:
    agent = make_agent(client)
    trigger = make_trigger(client, agent["id"])
    body = b"{}"

    assert client.delete(f"/api/agents/{agent['id']}").status_code == 204
    gone = fire(client, trigger, body, standard_headers(trigger["secret"], body))
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"


def test_delete_trigger(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])

    assert client.delete(f"/api/triggers/{trigger['id']}").status_code == 204
    assert client.delete(f"/api/triggers/{trigger['id']}").status_code == 404
    assert client.post(f"/api/triggers/{trigger['id']}/rotate").status_code == 404


def github_headers(secret: str, body: bytes, delivery: str) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={signature}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "push",
        "content-type": "application/json",
    }


def test_a_github_body_replayed_under_a_new_delivery_id_returns_the_first_run(
    client: httpx.Client, clock: FrozenClock
) -> None:
    agent = make_agent(client, concurrency="queue")
    trigger, other = (
        make_trigger(client, agent["id"], "github"),
        make_trigger(client, agent["id"], "github"),
    )
    body, different = b'{"ref": "refs/heads/main"}', b'{"ref": "refs/heads/dev"}'

    def send(to: dict[str, Any], payload: bytes, delivery: str) -> httpx.Response:
        return fire(client, to, payload, github_headers(to["secret"], payload, delivery))

    first = send(trigger, body, "d-1")
    replayed = send(trigger, body, "d-2")
    changed = send(trigger, different, "d-3")
    elsewhere = send(other, body, "d-4")  # another trigger's deliveries are its own
    for response in (first, changed, elsewhere):
        assert response.status_code == 202, response.text
        wait_finished(client, response.json()["id"])
    clock.advance(hours=24)
    at_the_end = send(trigger, body, "d-5")
    clock.advance(seconds=1)
    after = send(trigger, body, "d-6")
    wait_finished(client, after.json()["id"])

    assert replayed.status_code == 200 and replayed.json()["id"] == first.json()["id"]
    assert at_the_end.status_code == 200 and at_the_end.json()["id"] == first.json()["id"]
    assert after.status_code == 202
    ids = {first.json()["id"], changed.json()["id"], elsewhere.json()["id"], after.json()["id"]}
    assert len(ids) == 4
    assert {run["id"] for run in client.get("/api/runs").json()["items"]} == ids


def test_a_standard_delivery_deduplicates_on_its_signed_id_only(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client, concurrency="queue")["id"])
    body = b'{"same": "body"}'

    first = fire(client, trigger, body, standard_headers(trigger["secret"], body, "msg_a"))
    second = fire(client, trigger, body, standard_headers(trigger["secret"], body, "msg_b"))

    assert first.status_code == 202 and second.status_code == 202
    assert first.json()["id"] != second.json()["id"]


def nested(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, nested(33), b"[" * 100_000],
    ids=["100k", "33", "text"],
)
def test_a_payload_nested_too_deep_is_422(client: httpx.Client, body: bytes) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])

    unsigned = fire(client, trigger, body, {"content-type": "application/json"})
    response = fire(client, trigger, body, standard_headers(trigger["secret"], body))

    assert unsigned.status_code == 401  # the signature is checked first
    assert_error(response, 422, "payload_too_deep", "more than 32 deep")
    assert client.get("/api/runs").json()["items"] == []


def test_a_payload_nested_32_deep_is_accepted(client: httpx.Client) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])
    body = nested(32)

    response = fire(client, trigger, body, standard_headers(trigger["secret"], body))

    assert response.status_code == 202, response.text
    assert client.get(f"/api/runs/{response.json()['id']}").status_code == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"text": "nul \\u0000 here"}', "NUL character"),
        (b'{"text": "\\ud800"}', "lone surrogate"),
        (b'{"n": NaN}', "finite number"),
        (b"plain text with a NUL \x00", "NUL character"),
    ],
)
def test_a_payload_no_database_can_store_is_422(
    client: httpx.Client, body: bytes, reason: str
) -> None:
    trigger = make_trigger(client, make_agent(client)["id"])

    response = fire(client, trigger, body, standard_headers(trigger["secret"], body))

    assert_error(response, 422, "invalid_payload", reason)
    assert client.get("/api/runs").json()["items"] == []


@pytest.mark.parametrize("scheme", ["standard", "github"])
def test_a_delivery_id_longer_than_200_characters_is_422(client: httpx.Client, scheme: str) -> None:
    trigger = make_trigger(client, make_agent(client, concurrency="queue")["id"], scheme)
    body = b"{}"
    sign = standard_headers if scheme == "standard" else github_headers

    longest = fire(client, trigger, body, sign(trigger["secret"], body, "i" * 200))
    too_long = fire(client, trigger, body, sign(trigger["secret"], body, "i" * 201))
    huge = fire(client, trigger, body, sign(trigger["secret"], body, "i" * 4000))

    assert longest.status_code == 202, longest.text
    assert_error(too_long, 422, "delivery_id_too_long", "201 characters", "at most 200")
    assert_error(huge, 422, "delivery_id_too_long", "4000 characters")
    assert len(client.get("/api/runs").json()["items"]) == 1


def test_the_openapi_schema_describes_the_raw_body_and_the_answers(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/hooks/{public_id}"]["post"]

    body = operation["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/json", "*/*"}
    headers = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers["webhook-id"]["maxLength"] == headers["X-GitHub-Delivery"]["maxLength"] == 200
    assert {"webhook-timestamp", "webhook-signature", "X-Hub-Signature-256"} <= set(headers)
    responses = operation["responses"]
    for status in ("200", "202"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RunRead"
        }
    for status in ("401", "404", "413", "422"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }


def test_the_openapi_schema_links_a_new_trigger_to_its_delivery_url(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    created = schema["paths"]["/api/agents/{agent_id}/triggers"]["post"]["responses"]["201"]
    fire_id = schema["paths"]["/hooks/{public_id}"]["post"]["operationId"]

    assert created["links"][fire_id]["parameters"] == {"public_id": "$response.body#/public_id"}
    assert not any(path.startswith("/api/") and "/fire" in path for path in schema["paths"])
