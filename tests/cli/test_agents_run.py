"""`zerg agents run`: starts a task run on the running server and reports its outcome."""

import json

import httpx

from tests.cli.runner import Cli, error_line, json_output
from tests.support.openai_server import FakeOpenAI, Hang
from tests.support.postgres import free_port


def cli_lines(stderr: str) -> list[str]:
    """What the CLI wrote on stderr, without the log lines of the server, which runs in this
    process (its logs reach the stderr the runner captures)."""
    return [line for line in stderr.splitlines() if not line.startswith("{")]


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


def test_run_wait_shows_the_runs_steps_on_stderr(cli: Cli, base_url: str) -> None:
    agent_id = make_agent(cli)

    result = cli("agents", "run", str(agent_id), "--wait", ZERG_SERVER_URL=base_url)

    assert result.exit_code == 0, result.stderr
    lines = cli_lines(result.stderr)
    assert lines[:2] == ["run 1: queued", "run 1: running"]
    assert any(line.startswith("run 1: calling calculator(") for line in lines), lines
    assert any(line.startswith("run 1: tool calculator: ") for line in lines), lines
    assert lines[-1].startswith("run 1: assistant: "), lines
    assert result.stdout.startswith("run 1: succeeded (thread ")


def test_run_wait_without_progress_is_quiet_on_stderr(cli: Cli, base_url: str) -> None:
    agent_id = make_agent(cli)

    result = cli(
        "agents",
        "run",
        str(agent_id),
        "--wait",
        "--no-progress",
        "--json",
        ZERG_SERVER_URL=base_url,
    )

    assert cli_lines(result.stderr) == []
    assert json_output(result)["status"] == "succeeded"


def test_run_wait_gives_up_waiting_after_its_timeout(
    cli: Cli, base_url: str, openai_server: FakeOpenAI
) -> None:
    openai_server.enqueue(Hang())
    agent = json_output(
        cli(
            "agents",
            "create",
            "--name",
            "h",
            "--model",
            "openai:gpt-test",
            "--task",
            "wait",
            "--json",
        )
    )
    httpx.patch(
        f"{base_url}/api/agents/{agent['id']}",
        json={"config": {"base_url": f"{openai_server.base_url}/v1", "max_retries": 0}},
    ).raise_for_status()

    result = cli(
        "agents", "run", str(agent["id"]), "--wait", "--timeout", "4", ZERG_SERVER_URL=base_url
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("run 1: running")
    assert cli_lines(result.stderr) == ["run 1: queued", "run 1: running"]
    httpx.post(f"{base_url}/api/runs/1/cancel").raise_for_status()


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
    # The run's progress comes first on stderr; its error is the last line.
    *progress, last = cli_lines(result.stderr)
    assert progress == ["run 1: queued", "run 1: running"]
    assert last.startswith("error: openai:gpt-test: the model server answered 500")


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
