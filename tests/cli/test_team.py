"""A Zerg shared by a team, through a real `zerg serve`: the first user switches auth mode on,
and `zerg` commands that talk to the server send ZERG_TOKEN."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.runner import Cli, error_line
from tests.support.processes import ZergProcess
from tests.support.waiting import wait_for


@pytest.fixture
def server(database_url: str, data_dir: Path, tmp_path: Path) -> Iterator[ZergProcess]:
    env = {"ZERG_DATABASE_URL": database_url, "ZERG_DATA_DIR": str(data_dir)}
    process = ZergProcess(env, tmp_path / "serve.log").start()
    try:
        yield process
    finally:
        process.stop()


def test_the_first_user_turns_a_running_zerg_into_auth_mode(cli: Cli, server: ZergProcess) -> None:
    assert httpx.get(f"{server.url}/api/me").json()["mode"] == "local"

    created = cli("users", "create", "ada", "--admin")

    assert created.exit_code == 0, created.stderr
    token = created.stdout.strip()
    wait_for(
        lambda: httpx.get(f"{server.url}/api/agents").status_code == 401,
        "the server to require tokens",
        timeout_s=10,
    )
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/api/me", headers=auth).json()["name"] == "ada"
    agent = httpx.post(
        f"{server.url}/api/agents",
        json={"name": "demo", "model": "scripted:demo", "task_instructions": "6 * 7?"},
        headers=auth,
    ).json()

    refused = cli("agents", "run", str(agent["id"]), "--wait", ZERG_SERVER_URL=server.url)
    assert "unauthorized" in error_line(refused, 1)

    ran = cli(
        "agents", "run", str(agent["id"]), "--wait", ZERG_SERVER_URL=server.url, ZERG_TOKEN=token
    )
    assert ran.exit_code == 0, ran.stderr
    assert "succeeded" in ran.stdout
    assert token not in server.log.read_text()
