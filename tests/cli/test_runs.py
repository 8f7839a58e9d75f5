"""`zerg runs`: list and show from the database, cancel through the running server."""

import httpx

from tests.cli.runner import Cli, error_line, json_output
from tests.support.openai_server import FakeOpenAI, Hang
from tests.support.waiting import wait_for


def finished_run(cli: Cli, base_url: str) -> int:
    result = cli("agents", "create", "--name", "a", "--model", "scripted:demo", "--task", "hi")
    run = json_output(
        cli("agents", "run", result.stdout.strip(), "--wait", "--json", ZERG_SERVER_URL=base_url)
    )
    return int(run["id"])


def test_list_and_show(cli: Cli, base_url: str) -> None:
    run_id = finished_run(cli, base_url)

    listed = json_output(cli("runs", "list", "--json"))
    shown = json_output(cli("runs", "show", str(run_id), "--json"))
    table = cli("runs", "list", "--status", "succeeded")

    assert [r["id"] for r in listed] == [run_id]
    assert shown["status"] == "succeeded" and shown["id"] == run_id
    assert table.exit_code == 0 and f"{run_id}" in table.stdout and "succeeded" in table.stdout
    assert json_output(cli("runs", "list", "--status", "failed", "--json")) == []
    assert "does not exist" in error_line(cli("runs", "show", "999"), 3)


def test_cancel_a_running_run(cli: Cli, base_url: str, openai_server: FakeOpenAI) -> None:
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

    result = cli("runs", "cancel", str(run["id"]), ZERG_SERVER_URL=base_url)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"run {run['id']}: cancelled"
    again = error_line(cli("runs", "cancel", str(run["id"]), ZERG_SERVER_URL=base_url), 1)
    assert "(run_finished)" in again
