"""A Zerg shared by a team, through a real `zerg serve`: the first user switches auth mode on,
and `zerg` commands, which talk to the server, send ZERG_TOKEN or the token of `zerg login`."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.runner import Cli, error_line, json_output
from tests.support.processes import ZergProcess
from tests.support.waiting import wait_for
from zerg.cli import app


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
    assert "(unauthorized): run `zerg login`, or set ZERG_TOKEN" in error_line(refused, 1)

    ran = cli(
        "agents", "run", str(agent["id"]), "--wait", ZERG_SERVER_URL=server.url, ZERG_TOKEN=token
    )
    assert ran.exit_code == 0, ran.stderr
    assert "succeeded" in ran.stdout
    assert token not in server.log.read_text()


def test_a_team_member_works_from_the_cli_after_zerg_login(
    cli: Cli, server: ZergProcess, tmp_path: Path
) -> None:
    member = Cli({**cli.env, "ZERG_SERVER_URL": server.url})
    local = json_output(
        member("agents", "create", "--name", "local", "--model", "scripted:demo", "--json")
    )["id"]
    ada_token = cli("users", "create", "ada", "--admin").stdout.strip()
    bob_token = cli("users", "create", "bob").stdout.strip()
    wait_for(
        lambda: httpx.get(f"{server.url}/api/agents").status_code == 401,
        "the server to require tokens",
        timeout_s=10,
    )
    assert "run `zerg login`" in error_line(member("agents", "list"), 1)

    login = member.runner.invoke(app, ["login"], input=f"{bob_token}\n", env=member.env)
    assert login.exit_code == 0, login.stderr
    assert f"logged in to {server.url} as 'bob'" in login.stderr
    assert (tmp_path / "home" / ".config" / "zerg" / "token").exists()

    created = member(
        "agents", "create", "--name", "bob's", "--model", "scripted:demo", "--task", "6 * 7?"
    )
    assert created.exit_code == 0, created.stderr
    agent_id = created.stdout.strip()
    ran = member("agents", "run", agent_id, "--wait")
    assert ran.exit_code == 0, ran.stderr
    assert [a["name"] for a in json_output(member("agents", "list", "--json"))] == ["bob's"]
    runs = json_output(member("runs", "list", "--json"))
    assert [(r["agent_id"], r["status"]) for r in runs] == [(int(agent_id), "succeeded")]
    assert error_line(member("agents", "show", str(local)), 3)
    # ada, the first user and an admin, owns the agent of local mode and sees bob's too.
    as_ada = json_output(member("agents", "list", "--json", ZERG_TOKEN=ada_token))
    assert [a["name"] for a in as_ada] == ["local", "bob's"]

    assert member("logout").exit_code == 0
    assert "run `zerg login`" in error_line(member("runs", "list"), 1)
    log = server.log.read_text()
    assert ada_token not in log and bob_token not in log
