"""Chat on an `anthropic:` model: the real Anthropic client streams from an Anthropic-compatible
server, the tokens reach the thread's WebSocket topic before the turn ends, and the stored
message and the run's usage are what the model sent."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from websockets.sync.client import ClientConnection, connect

from tests.support.anthropic_server import FakeAnthropic
from tests.support.server import serve_in_thread
from tests.support.waiting import wait_for
from zerg.api.app import create_app
from zerg.settings import Settings

CHUNKS = ["Bonjour", ", ", "le ", "monde"]


@pytest.fixture
def anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    server = FakeAnthropic(CHUNKS, input_tokens=21, output_tokens=9)
    with serve_in_thread(server) as url:  # type: ignore[arg-type]
        yield server, url
    server.release.set()


@pytest.fixture
def zerg(settings: Settings, anthropic: tuple[FakeAnthropic, str]) -> Iterator[httpx.Client]:
    changed = settings.model_copy(
        update={
            "anthropic_api_key": SecretStr("sk-ant-zerg-test-key"),
            "model_base_urls": anthropic[1],
        }
    )
    with (
        serve_in_thread(create_app(changed)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def next_of(ws: ClientConnection, kind: str, **fields: Any) -> dict[str, Any]:
    """The next message of `kind` whose data has `fields` (others are skipped)."""
    while True:
        message = json.loads(ws.recv(timeout=30))
        data = message.get("data") or {}
        if message["type"] == kind and all(data.get(k) == v for k, v in fields.items()):
            return dict(message)


def test_a_chat_turn_streams_an_anthropic_answer_token_by_token(
    zerg: httpx.Client, anthropic: tuple[FakeAnthropic, str]
) -> None:
    server, url = anthropic
    client = zerg
    agent = client.post(
        "/api/agents",
        json={
            "name": "claude",
            "model": "anthropic:claude-test",
            "system_instructions": "Answer in French.",
            "config": {"base_url": url, "max_retries": 0},
        },
    ).json()
    thread = client.post("/api/threads", json={"agent_id": agent["id"]}).json()
    server.hold_last_chunk = True
    with connect(str(client.base_url.join("/api/ws")).replace("http", "ws", 1)) as ws:
        ws.send(json.dumps({"type": "subscribe", "topics": [f"thread:{thread['id']}"]}))
        assert next_of(ws, "subscribed")["topics"] == [f"thread:{thread['id']}"]
        response = client.post(f"/api/threads/{thread['id']}/messages", json={"content": "Salut"})
        assert response.status_code == 202, response.text
        run = response.json()
        assert run["trigger"] == "chat"

        tokens = [
            next_of(ws, "stream_chunk", chunk_type="assistant_token")["data"]["content"]
            for _ in CHUNKS
        ]
        # Every token is out while the model has not finished its answer.
        assert tokens == CHUNKS
        assert client.get(f"/api/runs/{run['id']}").json()["status"] == "running"
        server.release.set()
        end = next_of(ws, "stream_end")
    assert end["data"]["status"] == "succeeded"

    finished = wait_for(
        lambda: (r := client.get(f"/api/runs/{run['id']}").json())["finished_at"] and r,
        "the turn's record",
    )
    assert (finished["input_tokens"], finished["output_tokens"]) == (21, 9)
    messages = client.get(f"/api/threads/{thread['id']}/messages").json()["items"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Answer in French."),
        ("user", "Salut"),
        ("assistant", "".join(CHUNKS)),
    ]
    assert server.requests[0]["stream"] is True
    # A chat turn leaves the agent's task status alone.
    assert client.get(f"/api/agents/{agent['id']}").json()["status"] == "idle"

    # The next turn shows the model the whole conversation.
    response = client.post(f"/api/threads/{thread['id']}/messages", json={"content": "Encore"})
    assert response.status_code == 202, response.text
    turn = response.json()["id"]
    wait_for(
        lambda: client.get(f"/api/runs/{turn}").json()["status"] == "succeeded", "the second turn"
    )
    second = server.requests[1]
    assert second["system"] in (
        "Answer in French.",
        [{"type": "text", "text": "Answer in French."}],
    )
    assert [(m["role"], _text(m["content"])) for m in second["messages"]] == [
        ("user", "Salut"),
        ("assistant", "".join(CHUNKS)),
        ("user", "Encore"),
    ]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content)
