"""`zerg agents`: create, list, show and delete through a real server on the test's database,
how each reports bad input, and what a shared Zerg (auth mode) changes."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from tests.cli.conftest import Member
from tests.cli.runner import Cli, error_line, json_output
from tests.support.postgres import free_port
from tests.support.server import serve_in_thread

EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
MODEL = "openai:gpt-4o-mini"


def create(cli: Cli, name: str, *options: str) -> int:
    result = cli("agents", "create", "--name", name, "--model", MODEL, *options)
    assert result.exit_code == 0, (result.stderr, result.exception)
    return int(result.stdout)


def test_create_prints_only_the_new_id(api_cli: Cli) -> None:
    result = api_cli("agents", "create", "--name", "Digest", "--model", MODEL)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().isdigit()
    assert result.stdout == f"{result.stdout.strip()}\n"
    assert result.stderr == ""
    shown = json_output(api_cli("agents", "show", result.stdout.strip(), "--json"))
    assert shown["name"] == "Digest"


def test_create_json_takes_every_option(api_cli: Cli) -> None:
    result = api_cli(
        "agents", "create",
        "--name", "  Morning digest  ",
        "--model", "anthropic:claude-sonnet",
        "--system", "You are concise.",
        "--task", "Summarise the news.",
        "--tool", "http_get",
        "--tool", "calculator",
        "--tool", "http_get",
        "--schedule", "0 7 * * 1-5",
        "--timezone", "Europe/Paris",
        "--concurrency", "queue",
        "--timeout", "120",
        "--max-run-tokens", "5000",
        "--max-run-cost", "0.05",
        "--max-day-tokens", "100000",
        "--max-day-cost", "2.5",
        "--json",
    )  # fmt: skip

    agent = json_output(result)
    assert result.stderr == ""
    assert isinstance(agent["id"], int)
    next_run = datetime.fromisoformat(agent["next_run_at"]).astimezone(ZoneInfo("Europe/Paris"))
    assert (next_run.hour, next_run.minute) == (7, 0) and next_run.weekday() < 5
    assert next_run > datetime.now(UTC)
    assert agent | {"id": 0, "created_at": "", "updated_at": "", "next_run_at": None} == {
        "id": 0,
        "owner_id": None,
        "name": "Morning digest",
        "model": "anthropic:claude-sonnet",
        "system_instructions": "You are concise.",
        "task_instructions": "Summarise the news.",
        "tools": ["http_get", "calculator"],
        "schedule": "0 7 * * 1-5",
        "timezone": "Europe/Paris",
        "run_on_schedule": True,
        "missed_fires": "run_once",
        "concurrency": "queue",
        "timeout_s": 120,
        "status": "idle",
        "last_run_at": None,
        "next_run_at": None,
        "last_error": None,
        "notify_url": None,
        "config": {},
        "max_run_tokens": 5000,
        "max_run_cost_usd": 0.05,
        "max_day_tokens": 100000,
        "max_day_cost_usd": 2.5,
        "created_at": "",
        "updated_at": "",
    }
    assert agent["created_at"].endswith("Z")
    assert json_output(api_cli("agents", "show", str(agent["id"]), "--json")) == agent


def test_create_defaults(api_cli: Cli) -> None:
    agent = json_output(api_cli("agents", "create", "--name", "a", "--model", MODEL, "--json"))

    assert agent["system_instructions"] == ""
    assert agent["task_instructions"] is None
    assert agent["tools"] == []
    assert agent["schedule"] is None
    assert agent["timezone"] == "UTC"
    assert agent["concurrency"] == "reject"
    assert agent["timeout_s"] == 600


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--model", "gpt-4o"], "model: model must look like 'provider:name'"),
        (["--model", "nosuch:gpt"], "model: unknown model provider 'nosuch'"),
        (["--name", ""], "name: String should have at least 1 character"),
        (["--name", "   "], "name: String should have at least 1 character"),
        (["--schedule", "every morning"], "schedule: 'every morning' is not a valid cron"),
        (["--schedule", "61 * * * *"], "schedule: '61 * * * *' is not a valid cron"),
        (["--tool", "http_get", "--tool", "teleport"], "tools: unknown tool(s) teleport"),
        (["--timezone", "Mars/Olympus"], "timezone: 'Mars/Olympus' is not an IANA time zone"),
        (["--concurrency", "parallel"], "concurrency: Input should be 'reject' or 'queue'"),
        (["--timeout", "0"], "timeout_s: Input should be greater than or equal to 1"),
    ],
    ids=[
        "model-without-provider",
        "unknown-provider",
        "empty-name",
        "blank-name",
        "cron-words",
        "cron-out-of-range",
        "unknown-tool",
        "unknown-timezone",
        "unknown-concurrency",
        "zero-timeout",
    ],
)
def test_create_rejects_invalid_input(api_cli: Cli, options: list[str], expected: str) -> None:
    # An option given twice takes its last value, so `options` can override --name and --model.
    result = api_cli("agents", "create", "--name", "ok", "--model", MODEL, *options, "--json")

    assert expected in error_line(result, EXIT_INVALID)
    assert json_output(api_cli("agents", "list", "--json")) == []


def test_create_error_names_every_invalid_field(api_cli: Cli) -> None:
    result = api_cli("agents", "create", "--name", "x", "--model", "gpt", "--schedule", "nope")

    line = error_line(result, EXIT_INVALID)
    assert "model:" in line
    assert "schedule:" in line


def test_create_without_a_required_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("agents", "create", "--name", "x")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--model" in result.stderr


def test_list_on_an_empty_database(api_cli: Cli) -> None:
    assert json_output(api_cli("agents", "list", "--json")) == []
    table = api_cli("agents", "list")
    assert table.exit_code == 0
    assert table.stdout.split() == ["ID", "STATUS", "MODEL", "SCHEDULE", "NAME"]
    assert table.stderr == ""


def test_list_prints_a_table_oldest_first(api_cli: Cli) -> None:
    first = create(api_cli, "Digest", "--schedule", "0 7 * * *")
    second = create(api_cli, "Helper")

    result = api_cli("agents", "list")

    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "MODEL", "SCHEDULE", "NAME"]
    assert [row.split() for row in rows] == [
        [str(first), "idle", MODEL, "0", "7", "*", "*", "*", "Digest"],
        [str(second), "idle", MODEL, "-", "Helper"],
    ]
    assert result.stderr == ""


def test_list_json_matches_show(api_cli: Cli) -> None:
    ids = [create(api_cli, name) for name in ("a", "b", "c")]

    agents = json_output(api_cli("agents", "list", "--json"))

    assert [agent["id"] for agent in agents] == ids
    assert [agent["name"] for agent in agents] == ["a", "b", "c"]
    assert agents[1] == json_output(api_cli("agents", "show", str(ids[1]), "--json"))


def _next_page_hint(stderr: str) -> str:
    prefix = "more: zerg agents list --after "
    (line,) = stderr.splitlines()
    assert line.startswith(prefix), line
    return line.removeprefix(prefix)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_list_pages_with_limit_and_after(api_cli: Cli, as_json: bool) -> None:
    ids = [create(api_cli, f"agent {n}") for n in range(5)]
    flags = ["--json"] if as_json else []

    def page(*options: str) -> tuple[list[int], str]:
        result = api_cli("agents", "list", "--limit", "2", *flags, *options)
        assert result.exit_code == 0, result.stderr
        if as_json:
            return [agent["id"] for agent in json_output(result)], result.stderr
        return [int(row.split()[0]) for row in result.stdout.splitlines()[1:]], result.stderr

    seen, stderr = page()
    while stderr:
        items, stderr = page("--after", _next_page_hint(stderr))
        assert len(items) <= 2
        seen += items

    assert seen == ids


def test_list_rejects_a_cursor_it_did_not_issue(api_cli: Cli) -> None:
    result = api_cli("agents", "list", "--after", "not-a-cursor")

    assert "'after' is not a cursor" in error_line(result, EXIT_INVALID)


@pytest.mark.parametrize("limit", ["0", "201", "many"])
def test_list_rejects_a_bad_limit(cli: Cli, limit: str) -> None:
    result = cli("agents", "list", "--limit", limit)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--limit" in result.stderr


def test_show_prints_every_field(api_cli: Cli) -> None:
    agent_id = create(api_cli, "Digest", "--tool", "http_get", "--task", "Summarise.")

    result = api_cli("agents", "show", str(agent_id))

    assert result.exit_code == 0
    assert result.stderr == ""
    pairs = (line.partition(" ") for line in result.stdout.splitlines())
    fields = {name: value.strip() for name, _, value in pairs}
    assert fields["id"] == str(agent_id)
    assert fields["name"] == "Digest"
    assert fields["model"] == MODEL
    assert fields["task_instructions"] == "Summarise."
    assert fields["system_instructions"] == ""
    assert fields["schedule"] == "-"
    assert fields["status"] == "idle"
    assert "http_get" in fields["tools"]
    assert set(fields) >= {"created_at", "updated_at", "timeout_s", "concurrency", "timezone"}


def test_delete_removes_the_agent(api_cli: Cli) -> None:
    keep = create(api_cli, "keep")
    gone = create(api_cli, "gone")

    result = api_cli("agents", "delete", str(gone))

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"deleted agent {gone}\n"
    assert [agent["id"] for agent in json_output(api_cli("agents", "list", "--json"))] == [keep]
    assert "does not exist" in error_line(api_cli("agents", "show", str(gone)), EXIT_NOT_FOUND)


@pytest.mark.parametrize(
    "args",
    [["show", "999"], ["show", "999", "--json"], ["delete", "999"]],
    ids=["show", "show-json", "delete"],
)
def test_a_missing_agent_is_not_found(api_cli: Cli, args: list[str]) -> None:
    create(api_cli, "someone else")

    result = api_cli("agents", *args)

    assert error_line(result, EXIT_NOT_FOUND) == "error: agent 999 does not exist"


@pytest.mark.parametrize("command", ["show", "delete"])
@pytest.mark.parametrize("agent_id", ["abc", ""])
def test_an_agent_id_must_be_a_number(cli: Cli, command: str, agent_id: str) -> None:
    result = cli("agents", command, agent_id)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "agent_id" in result.stderr.lower()


@pytest.mark.parametrize("command", ["show", "delete"])
def test_an_agent_id_is_required(cli: Cli, command: str) -> None:
    result = cli("agents", command)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "agent_id" in result.stderr.lower()


def test_the_server_checks_what_only_it_can(api_cli: Cli) -> None:
    # A well-formed schedule that never fires: the server's check, with its own code.
    result = api_cli(
        "agents", "create", "--name", "x", "--model", MODEL, "--schedule", "0 0 30 2 *"
    )

    line = error_line(result, EXIT_INVALID)
    assert "never run the agent (schedule_never_fires)" in line
    assert json_output(api_cli("agents", "list", "--json")) == []


# Reaching the server: one line each, naming the fix.

COMMANDS = [["list"], ["show", "1"], ["delete", "1"], ["create", "--name", "x", "--model", MODEL]]
COMMAND_IDS = ["list", "show", "delete", "create"]


@pytest.mark.parametrize("args", COMMANDS, ids=COMMAND_IDS)
def test_no_server_names_the_fix(cli: Cli, args: list[str]) -> None:
    result = cli("agents", *args, ZERG_SERVER_URL=f"http://127.0.0.1:{free_port()}")

    line = error_line(result, 1)
    assert "cannot reach Zerg at http://127.0.0.1:" in line
    assert "start it with `zerg serve` or point ZERG_SERVER_URL at it" in line


def test_a_server_url_without_a_scheme_is_one_error_line(cli: Cli) -> None:
    line = error_line(cli("agents", "list", ZERG_SERVER_URL="zerg.lan:8000"), 1)

    assert "'zerg.lan:8000' is not an http:// or https:// URL" in line


def test_a_local_mode_server_reached_by_another_name_names_the_fix(
    api_cli: Cli, base_url: str
) -> None:
    # 127.1 reaches 127.0.0.1, but as a Host header it is not a loopback name the server trusts.
    other_name = base_url.replace("127.0.0.1", "127.1")

    line = error_line(api_cli("agents", "list", ZERG_SERVER_URL=other_name), 1)

    assert "(host_not_allowed)" in line
    assert f"set ZERG_SERVER_URL=http://127.0.0.1:{base_url.rsplit(':', 1)[1]}" in line


def test_an_answer_that_is_not_from_zerg_is_one_error_line(cli: Cli) -> None:
    other = FastAPI()

    @other.get("/api/agents")
    def page() -> PlainTextResponse:
        return PlainTextResponse("<html>a proxy's login page</html>")

    @other.get("/api/agents/1")
    def agent() -> dict[str, Any]:
        return {"id": "one"}

    with serve_in_thread(other) as url:
        not_json = error_line(cli("agents", "list", ZERG_SERVER_URL=url), 1)
        wrong_shape = error_line(cli("agents", "show", "1", ZERG_SERVER_URL=url), 1)

    assert "is not JSON: is ZERG_SERVER_URL the address of a Zerg server?" in not_json
    assert "the server's answer is not the expected AgentRead" in wrong_shape


# Auth mode: from the first user on, every command sends a token and sees its user's agents only.


def test_without_a_token_each_command_names_the_fix(
    api_cli: Cli, add_user: Callable[[str], Member], base_url: str
) -> None:
    agent_id = create(api_cli, "made in local mode")
    add_user("ada")

    for args in [*COMMANDS, ["show", str(agent_id)]]:
        line = error_line(api_cli("agents", *args), 1)
        assert line == (
            f"error: Zerg at {base_url} has users, so it needs an API token (unauthorized): "
            "run `zerg login`, or set ZERG_TOKEN (an admin makes tokens with "
            "`zerg tokens create`)"
        )


def test_a_refused_token_is_named_by_its_source_never_shown(
    api_cli: Cli, add_user: Callable[[str], Member]
) -> None:
    add_user("ada")
    wrong = "zerg_" + "W" * 43

    line = error_line(api_cli("agents", "list", ZERG_TOKEN=wrong), 1)

    assert "refused the API token from ZERG_TOKEN: unknown API token (unauthorized)" in line
    assert "set ZERG_TOKEN to a valid token, or unset it and run `zerg login`" in line
    assert wrong not in line


def test_a_token_that_cannot_be_a_header_is_refused_before_sending(api_cli: Cli) -> None:
    line = error_line(api_cli("agents", "list", ZERG_TOKEN="zerg_ab cd"), 1)

    assert line.startswith("error: ZERG_TOKEN does not hold an API token")
    assert "zerg_ab" not in line


def test_with_a_token_each_user_sees_only_their_agents(
    api_cli: Cli, add_user: Callable[[str], Member]
) -> None:
    before = create(api_cli, "made in local mode")
    ada, bob = add_user("ada"), add_user("bob")
    outputs = []

    def as_user(member: Member, *args: str) -> Any:
        result = api_cli("agents", *args, ZERG_TOKEN=member.token)
        outputs.append(result.stdout + result.stderr)
        return result

    assert json_output(as_user(bob, "list", "--json")) == []
    bobs = json_output(as_user(bob, "create", "--name", "b", "--model", MODEL, "--json"))
    assert bobs["owner_id"] == bob.id
    assert [a["id"] for a in json_output(as_user(bob, "list", "--json"))] == [bobs["id"]]
    # The first user took over the agents of local mode; bob cannot tell they exist.
    adas = json_output(as_user(ada, "list", "--json"))
    assert [(a["id"], a["owner_id"]) for a in adas] == [(before, ada.id)]
    for command in ("show", "delete"):
        missing = error_line(as_user(bob, command, str(before)), EXIT_NOT_FOUND)
        assert missing == f"error: agent {before} does not exist"
    table = as_user(ada, "list")
    assert [row.split()[0] for row in table.stdout.splitlines()[1:]] == [str(before)]
    assert as_user(ada, "delete", str(before)).exit_code == 0
    assert json_output(as_user(ada, "list", "--json")) == []
    assert all(ada.token not in text and bob.token not in text for text in outputs)
