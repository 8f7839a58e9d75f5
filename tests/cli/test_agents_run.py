"""`zerg agents run`: starts a task run on the running server and reports its outcome."""

import json

import httpx

from tests.cli.runner import Cli, error_line, json_output
from tests.support.openai_server import FakeOpenAI
from tests.support.postgres import free_port


def make_agent(cli: Cli, *extra: str) -> int:
    result = cli(
        "agents",
        "create",
        "--name",
        "calc",
        "--model",
        "scripted:demo",
        "--task",
        "What is 6 * 7?",
        "--tool",
        "calculator",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def test_run_wait_prints_the_finished_run(cli: Cli, base_url: str) -> None:
    agent_id = make_agent(cli)

    result = cli("agents", "run", str(agent_id), "--wait", ZERG_SERVER_URL=base_url)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("run 1: succeeded (thread ")
    assert "tokens" in result.stdout


def test_run_wait_json_has_the_run_and_its_thread(cli: Cli, base_url: str) -> None:
    agent_id = make_agent(cli)

    run = json_output(
        cli("agents", "run", str(agent_id), "--wait", "--json", ZERG_SERVER_URL=base_url)
    )

    assert run["status"] == "succeeded"
    assert run["agent_id"] == agent_id
    assert isinstance(run["thread_id"], int)
    assert run["total_tokens"] > 0


def test_run_without_wait_answers_with_the_queued_run(cli: Cli, base_url: str) -> None:
    agent_id = make_agent(cli)

    run = json_output(cli("agents", "run", str(agent_id), "--json", ZERG_SERVER_URL=base_url))

    assert run["status"] in ("queued", "running", "succeeded")


def test_a_failed_run_exits_5_and_prints_the_error(
    cli: Cli, base_url: str, openai_server: FakeOpenAI
) -> None:
    openai_server.reply_error(500)
    result = cli(
        "agents",
        "create",
        "--name",
        "x",
        "--model",
        "openai:gpt-test",
        "--task",
        "hi",
        "--json",
    )
    agent = json.loads(result.stdout)
    # The model server comes from the agent's config, set through the API.
    cli_env = {"ZERG_SERVER_URL": base_url}
    httpx.patch(
        f"{base_url}/api/agents/{agent['id']}",
        json={"config": {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0}},
    ).raise_for_status()

    result = cli("agents", "run", str(agent["id"]), "--wait", **cli_env)

    assert result.exit_code == 5
    assert result.stdout.startswith("run 1: failed")
    assert result.stderr.startswith("error: openai:gpt-test: the model server answered 500")


def test_unknown_agent_and_missing_task_instructions_are_one_error_line(
    cli: Cli, base_url: str
) -> None:
    assert "does not exist" in error_line(cli("agents", "run", "99", ZERG_SERVER_URL=base_url), 3)
    result = cli("agents", "create", "--name", "n", "--model", "scripted:demo")
    line = error_line(cli("agents", "run", result.stdout.strip(), ZERG_SERVER_URL=base_url), 4)
    assert "no task_instructions" in line and "(no_task_instructions)" in line


def test_no_server_names_the_fix(cli: Cli) -> None:
    line = error_line(
        cli("agents", "run", "1", ZERG_SERVER_URL=f"http://127.0.0.1:{free_port()}"), 1
    )
    assert "start it with `zerg serve`" in line
