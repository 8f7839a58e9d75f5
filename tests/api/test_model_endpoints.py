"""The server's provider keys go only to endpoints the operator trusts: an agent's
config.base_url must be the provider's own, OPENAI_BASE_URL, or listed in ZERG_MODEL_BASE_URLS,
when the agent is saved and again when it runs."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from tests.api.helpers import Rows, assert_error
from tests.support.openai_server import FakeOpenAI, Text
from tests.support.server import serve_in_thread
from zerg.api.app import create_app
from zerg.settings import Settings

OPENAI_KEY = "sk-zerg-test-openai-key"
ANTHROPIC_KEY = "sk-ant-zerg-test-key"


class Listener:
    """An HTTP server that records the credentials of every request it gets, and fails it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["path"], headers))
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    @property
    def credentials(self) -> list[str]:
        names = ("authorization", "x-api-key")
        return [h[name] for _, h in self.seen for name in names if name in h]


@pytest.fixture
def listener() -> Iterator[tuple[Listener, str]]:
    recorder = Listener()
    with serve_in_thread(recorder) as url:  # type: ignore[arg-type]
        yield recorder, f"{url}/v1"


@contextmanager
def zerg_with(settings: Settings, **changes: Any) -> Iterator[httpx.Client]:
    """Zerg with the provider keys set, and the given settings."""
    changed = settings.model_copy(
        update={
            "openai_api_key": SecretStr(OPENAI_KEY),
            "anthropic_api_key": SecretStr(ANTHROPIC_KEY),
            **changes,
        }
    )
    with (
        serve_in_thread(create_app(changed)) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def agent_body(base_url: str, model: str = "openai:gpt-test") -> dict[str, Any]:
    return {
        "name": "local",
        "model": model,
        "task_instructions": "Say hi.",
        "config": {"base_url": base_url, "max_retries": 0},
    }


def run(client: httpx.Client, agent_id: int) -> dict[str, Any]:
    response = client.post(f"/api/agents/{agent_id}/task", params={"wait": "true"})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("model", ["openai:gpt-test", "anthropic:claude-test", "scripted:demo"])
def test_an_unlisted_base_url_is_refused_at_create_and_at_update(
    settings: Settings, listener: tuple[Listener, str], model: str
) -> None:
    recorder, url = listener

    with zerg_with(settings) as client:
        response = client.post("/api/agents", json=agent_body(url, model))

        detail = assert_error(response, 422, "base_url_not_allowed", url)
        assert "ZERG_MODEL_BASE_URLS" in detail and f"add '{url}' to" in detail
        agent = client.post("/api/agents", json={**agent_body(url, model), "config": {}}).json()
        response = client.patch(f"/api/agents/{agent['id']}", json={"config": {"base_url": url}})
        assert_error(response, 422, "base_url_not_allowed", "ZERG_MODEL_BASE_URLS")
        assert client.get(f"/api/agents/{agent['id']}").json()["config"] == {}
        assert len(client.get("/api/agents").json()["items"]) == 1
    assert recorder.seen == []


@pytest.mark.parametrize("model", ["openai:gpt-test", "anthropic:claude-test"])
def test_an_agent_stored_with_an_unlisted_base_url_never_sends_the_key(
    settings: Settings, listener: tuple[Listener, str], rows: Rows, model: str
) -> None:
    """An agent saved before the operator took its URL off the list: its run fails, and
    the listener never hears from Zerg."""
    recorder, url = listener
    agent_id = rows.agent(**agent_body(url, model))

    with zerg_with(settings) as client:
        finished = run(client, agent_id)

    assert finished["status"] == "failed"
    assert "is not an allowed model endpoint" in finished["error"]
    assert "ZERG_MODEL_BASE_URLS" in finished["error"]
    assert recorder.seen == []
    assert recorder.credentials == []


def test_a_listed_base_url_gets_the_key_through_a_real_run(
    settings: Settings, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Text("hi"))
    url = f"{openai_server.base_url}/v1"

    # Listed among others, with a trailing slash.
    with zerg_with(settings, model_base_urls=f"http://other.example/v1, {url}/") as client:
        created = client.post("/api/agents", json=agent_body(url))
        assert created.status_code == 201, created.text
        finished = run(client, created.json()["id"])

    assert finished["status"] == "succeeded", finished
    assert [r.authorization for r in openai_server.requests] == [f"Bearer {OPENAI_KEY}"]


def test_openai_base_url_and_the_providers_own_endpoints_stay_trusted(
    settings: Settings, listener: tuple[Listener, str]
) -> None:
    _, url = listener

    with zerg_with(settings, openai_base_url=url) as client:
        for body in (
            agent_body(url + "/"),
            agent_body("https://API.openai.com:443/v1"),
            agent_body("https://api.anthropic.com", "anthropic:claude-test"),
        ):
            response = client.post("/api/agents", json=body)

            assert response.status_code == 201, (body, response.text)
        # The OpenAI key's endpoint is not trusted with the Anthropic key, nor the reverse.
        for body in (
            agent_body(url, "anthropic:claude-test"),
            agent_body("https://api.anthropic.com"),
            agent_body("https://api.openai.com/v1", "anthropic:claude-test"),
        ):
            response = client.post("/api/agents", json=body)

            assert_error(response, 422, "base_url_not_allowed", case=body)


@pytest.mark.parametrize(
    "given",
    [
        "http://127.0.0.1:8799/v2",  # another path
        "http://127.0.0.1:8800/v1",  # another port
        "https://127.0.0.1:8799/v1",  # another scheme
        "http://127.0.0.2:8799/v1",  # another host
        "http://user:pw@127.0.0.1:8799/v1",  # credentials of its own
        "http://127.0.0.1:8799/v1?next=http://evil.example",
        "http://127.0.0.1:8799/v1/../../steal",
    ],
)
def test_only_the_listed_endpoint_itself_is_allowed(settings: Settings, given: str) -> None:
    with zerg_with(settings, model_base_urls="http://127.0.0.1:8799/v1") as client:
        response = client.post("/api/agents", json=agent_body(given))

        assert_error(response, 422, "base_url_not_allowed", case=given)
        allowed = client.post("/api/agents", json=agent_body("http://127.0.0.1:8799/v1/"))
        assert allowed.status_code == 201, allowed.text


def test_changing_the_model_checks_the_stored_base_url_again(
    settings: Settings, listener: tuple[Listener, str]
) -> None:
    _, url = listener

    with zerg_with(settings, openai_base_url=url) as client:
        agent = client.post("/api/agents", json=agent_body(url)).json()

        response = client.patch(f"/api/agents/{agent['id']}", json={"model": "anthropic:claude"})

        assert_error(response, 422, "base_url_not_allowed", url)
        assert client.get(f"/api/agents/{agent['id']}").json()["model"] == "openai:gpt-test"
