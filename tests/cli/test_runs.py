"""`zerg runs`: list, show and cancel through a real server on the test's database."""

from collections.abc import Callable

import httpx
import pytest

from tests.cli.conftest import Member
from tests.cli.runner import Cli, error_line, json_output
from tests.support.openai_server import FakeOpenAI, Hang
from tests.support.postgres import free_port
from tests.support.waiting import wait_for


def finished_run(cli: Cli, **env: str) -> int:
    result = cli(
        "agents", "create", "--name", "a", "--model", "scripted:demo", "--task", "hi", **env
    )
    assert result.exit_code == 0, result.stderr
    run = json_output(cli("agents", "run", result.stdout.strip(), "--wait", "--json", **env))
    return int(run["id"])


def test_list_and_show(api_cli: Cli) -> None:
    run_id = finished_run(api_cli)

    listed = json_output(api_cli("runs", "list", "--json"))
    shown = json_output(api_cli("runs", "show", str(run_id), "--json"))
    table = api_cli("runs", "list", "--status", "succeeded")

    assert [r["id"] for r in listed] == [run_id]
    assert shown["status"] == "succeeded" and shown["id"] == run_id
    assert listed[0] == shown
    assert table.exit_code == 0 and f"{run_id}" in table.stdout and "succeeded" in table.stdout
    assert table.stderr == ""
    assert json_output(api_cli("runs", "list", "--status", "failed", "--json")) == []
    assert error_line(api_cli("runs", "show", "999"), 3) == "error: run 999 does not exist"


def test_show_prints_every_field(api_cli: Cli) -> None:
    run_id = finished_run(api_cli)

    result = api_cli("runs", "show", str(run_id))

    assert result.exit_code == 0 and result.stderr == ""
    pairs = (line.partition(" ") for line in result.stdout.splitlines())
    fields = {name: value.strip() for name, _, value in pairs}
    assert fields["id"] == str(run_id)
    assert fields["status"] == "succeeded"
    assert fields["trigger"] == "manual"
    assert fields["error"] == "-"
    assert set(fields) >= {"agent_id", "thread_id", "queued_at", "duration_ms", "total_tokens"}


def test_list_shows_one_page_newest_first_and_says_how_to_get_the_next(api_cli: Cli) -> None:
    ids = [finished_run(api_cli) for _ in range(3)]

    first = api_cli("runs", "list", "--limit", "2", "--json")
    prefix = "more: zerg runs list --after "
    assert first.stderr.startswith(prefix)
    cursor = first.stderr.strip().removeprefix(prefix)
    rest = api_cli("runs", "list", "--limit", "2", "--after", cursor)

    assert [r["id"] for r in json_output(first)] == ids[:0:-1]
    assert [row.split()[0] for row in rest.stdout.splitlines()[1:]] == [str(ids[0])]
    assert rest.stderr == ""
    agent_id = json_output(api_cli("runs", "show", str(ids[0]), "--json"))["agent_id"]
    mine = json_output(api_cli("runs", "list", "--agent", str(agent_id), "--json"))
    assert [r["id"] for r in mine] == [ids[0]]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["list", "--after", "nope"], "'after' is not a cursor this server issued"),
        (["list", "--agent", "0"], "agent_id: Input should be greater than or equal to 1"),
    ],
    ids=["cursor", "agent-id"],
)
def test_invalid_input_is_exit_4(api_cli: Cli, args: list[str], expected: str) -> None:
    assert expected in error_line(api_cli("runs", *args), 4)


@pytest.mark.parametrize("args", [["list"], ["show", "1"], ["cancel", "1"]])
def test_no_server_names_the_fix(cli: Cli, args: list[str]) -> None:
    result = cli("runs", *args, ZERG_SERVER_URL=f"http://127.0.0.1:{free_port()}")

    assert "start it with `zerg serve`" in error_line(result, 1)


def test_cancel_a_running_run(api_cli: Cli, base_url: str, openai_server: FakeOpenAI) -> None:
    openai_server.enqueue(Hang())
    agent = httpx.post(
        f"{base_url}/api/agents",
        json={
            "name": "h",
            "model": "openai:gpt-test",
            "task_instructions": "wait",
            "config": {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0},
        },
    ).json()
    run = httpx.post(f"{base_url}/api/agents/{agent['id']}/task").json()
    wait_for(openai_server.count, "the model call")

    result = api_cli("runs", "cancel", str(run["id"]))

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"run {run['id']}: cancelled"
    again = error_line(api_cli("runs", "cancel", str(run["id"])), 1)
    assert "(run_finished)" in again


def test_auth_mode_shows_each_user_only_their_runs(
    api_cli: Cli, add_user: Callable[[str], Member]
) -> None:
    ada, bob = add_user("ada"), add_user("bob")
    run_id = finished_run(api_cli, ZERG_TOKEN=ada.token)

    without = error_line(api_cli("runs", "list"), 1)
    as_bob = {"ZERG_TOKEN": bob.token}
    bobs = json_output(api_cli("runs", "list", "--json", **as_bob))
    hidden = error_line(api_cli("runs", "show", str(run_id), **as_bob), 3)
    not_cancelled = error_line(api_cli("runs", "cancel", str(run_id), **as_bob), 3)
    adas = json_output(api_cli("runs", "list", "--json", ZERG_TOKEN=ada.token))

    assert "run `zerg login`, or set ZERG_TOKEN" in without
    assert bobs == []
    assert hidden == not_cancelled == f"error: run {run_id} does not exist"
    assert [r["id"] for r in adas] == [run_id]
    assert adas[0]["trigger"] == "api"
