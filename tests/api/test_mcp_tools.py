"""MCP tools through real task runs: a stdio server the test starts, and the same server over
streamable HTTP on a loopback port (with a bearer token), behind the network guard."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.support.mcp_server import serve_http
from tests.support.openai_server import FakeOpenAI, tool_then_answer
from zerg.agents.tools.mcp import forget_listings
from zerg.settings import Settings

SERVER_SCRIPT = str(Path(__file__).resolve().parents[1] / "support" / "mcp_server.py")
TOKEN = "mcp-test-token"


@pytest.fixture(autouse=True)
def _fresh_listings() -> Iterator[None]:
    forget_listings()
    yield
    forget_listings()


def stdio(log: Path | None = None, **env: str) -> dict[str, Any]:
    """The test server as a stdio MCP server (each start logged to `log`)."""
    server: dict[str, Any] = {"transport": "stdio", "command": sys.executable}
    server["args"] = [SERVER_SCRIPT]
    if log is not None:
        env = {"MCP_TEST_LOG": str(log), **env}
    if env:
        server["env"] = env
    return server


def create_agent(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "mcp",
        "model": "scripted:demo",
        "task_instructions": "Greet the world.",
        **fields,
    }
    response = client.post("/api/agents", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def openai_fields(server: FakeOpenAI, mcp_servers: dict[str, Any]) -> dict[str, Any]:
    config = {"base_url": f"{server.base_url}/v1", "max_retries": 0, "mcp_servers": mcp_servers}
    return {"model": "openai:gpt-test", "config": config}


def run(client: httpx.Client, agent_id: int) -> dict[str, Any]:
    response = client.post(f"/api/agents/{agent_id}/task?wait=true&timeout_s=60")
    assert response.status_code == 200, response.text
    return dict(response.json())


def messages(client: httpx.Client, thread_id: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"/api/threads/{thread_id}/messages").json()["items"]
    return items


def starts(log: Path) -> int:
    return log.read_text().count("start") if log.exists() else 0


def test_stdio_tools_are_listed_and_called(client: httpx.Client, tmp_path: Path) -> None:
    agent = create_agent(client, config={"mcp_servers": {"local": stdio()}})

    finished = run(client, agent["id"])

    assert finished["status"] == "succeeded", finished["error"]
    stored = messages(client, finished["thread_id"])
    assert [m["role"] for m in stored] == ["system", "user", "assistant", "tool", "assistant"]
    call, tool, answer = stored[2:]
    # scripted:demo calls the first tool it is given: the server's first, `greet`.
    assert call["tool_calls"][0]["name"] == "greet"
    assert tool["name"] == "greet" and tool["content"] == "Hello, world!"
    assert tool["metadata"]["status"] == "success"
    assert answer["content"] == "The greet tool says: Hello, world!"


def test_mcp_tools_come_after_the_built_in_ones(client: httpx.Client) -> None:
    agent = create_agent(client, tools=["calculator"], config={"mcp_servers": {"s": stdio()}})

    finished = run(client, agent["id"])

    assert finished["status"] == "succeeded", finished["error"]
    assert messages(client, finished["thread_id"])[3]["name"] == "calculator"


def test_a_failing_tool_call_becomes_a_tool_message(
    client: httpx.Client, openai_server: FakeOpenAI
) -> None:
    openai_server.set_policy(tool_then_answer("explode", {"reason": "badly"}, answer="Noted."))
    agent = create_agent(client, **openai_fields(openai_server, {"local": stdio()}))

    finished = run(client, agent["id"])

    assert finished["status"] == "succeeded", finished["error"]
    tool, answer = messages(client, finished["thread_id"])[3:]
    assert tool["name"] == "explode" and tool["metadata"]["status"] == "error"
    assert tool["content"].startswith("Error: tool explode failed: ToolException:")
    assert "exploded badly" in tool["content"]
    assert answer["content"] == "Noted."
    # The model saw the error and the tools' descriptions and schemas.
    assert "exploded badly" in openai_server.requests[1].body["messages"][-1]["content"]
    sent = {t["function"]["name"]: t["function"] for t in openai_server.requests[0].body["tools"]}
    assert sent["greet"]["description"] == "Greet someone by name."
    assert "name" in sent["greet"]["parameters"]["properties"]


def test_a_server_that_does_not_start_fails_the_run(client: httpx.Client) -> None:
    servers = {"broken": {"transport": "stdio", "command": "/nonexistent/mcp-server"}}
    agent = create_agent(client, config={"mcp_servers": servers})

    finished = run(client, agent["id"])

    assert finished["status"] == "failed"
    assert finished["error"] == "MCP server 'broken' did not start: command not found"
    assert client.get(f"/api/agents/{agent['id']}").json()["last_error"] == finished["error"]


def test_a_command_that_exits_fails_the_run(client: httpx.Client) -> None:
    server = {"transport": "stdio", "command": sys.executable, "args": ["-c", "print('hi')"]}
    agent = create_agent(client, config={"mcp_servers": {"quitter": server}})

    finished = run(client, agent["id"])

    assert finished["status"] == "failed"
    assert finished["error"].startswith("MCP server 'quitter' did not start: ")


def test_listings_are_cached_per_server_config(client: httpx.Client, tmp_path: Path) -> None:
    log = tmp_path / "mcp.log"
    agent = create_agent(client, config={"mcp_servers": {"local": stdio(log)}})

    assert run(client, agent["id"])["status"] == "succeeded"
    assert starts(log) == 2  # one listing, one call
    assert run(client, agent["id"])["status"] == "succeeded"
    assert starts(log) == 3  # the call only: the listing was cached

    # Another agent with the same server shares the listing.
    other = create_agent(client, config={"mcp_servers": {"local": stdio(log)}})
    assert run(client, other["id"])["status"] == "succeeded"
    assert starts(log) == 4

    changed = {"mcp_servers": {"local": stdio(log, GREETING="changed")}}
    response = client.patch(f"/api/agents/{agent['id']}", json={"config": changed})
    assert response.status_code == 200, response.text
    assert run(client, agent["id"])["status"] == "succeeded"
    assert starts(log) == 6  # listed anew for the new config, then called


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    with serve_http(TOKEN, str(tmp_path / "http.log")) as url:
        yield url


class TestHttp:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        """The operator lets agents reach loopback, where the test's MCP server is."""
        return settings.model_copy(update={"http_allowed_networks": "127.0.0.0/8"})

    def test_tools_are_listed_and_called_with_the_headers(
        self, client: httpx.Client, openai_server: FakeOpenAI, http_server: str, tmp_path: Path
    ) -> None:
        openai_server.set_policy(tool_then_answer("greet", {"name": "Ada"}))
        remote = {
            "transport": "streamable_http",
            "url": http_server,
            "headers": {"Authorization": f"Bearer {TOKEN}"},
        }
        agent = create_agent(client, **openai_fields(openai_server, {"remote": remote}))

        finished = run(client, agent["id"])

        assert finished["status"] == "succeeded", finished["error"]
        tool = messages(client, finished["thread_id"])[3]
        assert tool["name"] == "greet" and tool["content"] == "Hello, Ada!"
        log = (tmp_path / "http.log").read_text().split()
        # Listed once; then the call's own session (whose client lists the tools once more,
        # to check the call's result against the tool's output schema).
        assert log == ["start", "list", "start", "list"]

    def test_a_wrong_token_fails_the_run(self, client: httpx.Client, http_server: str) -> None:
        remote = {"transport": "streamable_http", "url": http_server}
        agent = create_agent(client, config={"mcp_servers": {"remote": remote}})

        finished = run(client, agent["id"])

        assert finished["status"] == "failed"
        assert finished["error"].startswith("MCP server 'remote' did not answer: ")
        assert "401" in finished["error"]


def test_a_private_url_is_refused_without_the_allowlist(
    client: httpx.Client, http_server: str
) -> None:
    remote = {"transport": "streamable_http", "url": http_server}
    agent = create_agent(client, config={"mcp_servers": {"remote": remote}})

    finished = run(client, agent["id"])

    assert finished["status"] == "failed"
    assert finished["error"].startswith("MCP server 'remote' did not answer: Refused http://127")
    assert "loopback" in finished["error"]


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ([], "must be an object of servers by name"),
        ({"bad name": stdio()}, "a server's name must be 1-32 letters"),
        ({f"s{n}": stdio() for n in range(11)}, "at most 10 servers, not 11"),
        ({"s": {"command": "x"}}, 'needs "transport": "stdio"'),
        ({"s": {"transport": "sse", "url": "http://x"}}, 'needs "transport"'),
        ({"s": {"transport": "stdio", "command": ""}}, "command: String should have at least"),
        ({"s": {**stdio(), "args": "x"}}, "args: Input should be a valid list"),
        ({"s": {**stdio(), "cwd": "/"}}, "cwd: Extra inputs are not permitted"),
        ({"s": {**stdio(), "env": {"K": "${OPENAI_API_KEY}"}}}, "env.K: must not contain"),
        ({"s": {**stdio(), "env": {"1K": "v"}}}, "not a valid environment variable name"),
        ({"s": {"transport": "streamable_http", "url": "ftp://x"}}, "url: must be an http://"),
        (
            {"s": {"transport": "streamable_http", "url": "https://u:p@x.example/mcp"}},
            "no user info",
        ),
        (
            {"s": {"transport": "streamable_http", "url": "https://x", "headers": {"A": "1\n"}}},
            "headers.A: must not contain line breaks",
        ),
    ],
)
def test_invalid_mcp_servers_are_422(client: httpx.Client, servers: Any, message: str) -> None:
    response = client.post(
        "/api/agents",
        json={"name": "x", "model": "scripted:demo", "config": {"mcp_servers": servers}},
    )
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"], response.json()["detail"]
    assert "mcp_servers" in response.json()["detail"]


def test_clashing_names_are_prefixed_with_the_server(client: httpx.Client) -> None:
    agent = create_agent(client, config={"mcp_servers": {"a": stdio(), "b": stdio()}})

    response = client.get(f"/agents/{agent['id']}/mcp-tools")

    assert response.status_code == 200, response.text
    listed = {s["name"]: [t["name"] for t in s["tools"]] for s in response.json()}
    assert listed == {"a": ["a__greet", "a__explode"], "b": ["b__greet", "b__explode"]}
    finished = run(client, agent["id"])
    assert finished["status"] == "succeeded", finished["error"]
    assert messages(client, finished["thread_id"])[3]["content"] == "Hello, world!"


def test_the_editor_endpoint_shows_tools_and_errors(client: httpx.Client) -> None:
    servers = {"local": stdio(), "broken": {"transport": "stdio", "command": "/nonexistent/x"}}
    agent = create_agent(client, config={"mcp_servers": servers})

    response = client.get(f"/agents/{agent['id']}/mcp-tools")

    assert response.status_code == 200, response.text
    local, broken = response.json()
    assert local == {
        "name": "local",
        "transport": "stdio",
        "tools": [
            {"name": "greet", "description": "Greet someone by name."},
            {"name": "explode", "description": "Always fails, to test errors."},
        ],
        "error": None,
    }
    assert broken["tools"] == []
    assert broken["error"] == "MCP server 'broken' did not start: command not found"
    assert client.get("/agents/999999/mcp-tools").status_code == 404


def test_stdio_servers_can_be_turned_off(client: httpx.Client, app: Any) -> None:
    agent = create_agent(client, config={"mcp_servers": {"local": stdio()}})
    settings: Settings = app.state.settings
    app.state.settings = settings.model_copy(update={"mcp_stdio": "off"})
    try:
        response = client.post(
            "/api/agents",
            json={"name": "x", "model": "scripted:demo", "config": {"mcp_servers": {"s": stdio()}}},
        )
        assert_error(response, 422, "mcp_stdio_not_allowed")
        assert "ZERG_MCP_STDIO=off" in response.json()["detail"]
    finally:
        app.state.settings = settings
    assert agent["config"]["mcp_servers"]["local"]["command"] == sys.executable
