"""`zerg agents`: create, list, show and delete, and how each reports bad input."""

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.cli.runner import Cli, error_line, json_output
from tests.support.postgres import free_port

EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
MODEL = "openai:gpt-4o-mini"


def create(cli: Cli, name: str, *options: str) -> int:
    result = cli("agents", "create", "--name", name, "--model", MODEL, *options)
    assert result.exit_code == 0, (result.stderr, result.exception)
    return int(result.stdout)


def test_create_prints_only_the_new_id(cli: Cli) -> None:
    result = cli("agents", "create", "--name", "Digest", "--model", MODEL)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().isdigit()
    assert result.stdout == f"{result.stdout.strip()}\n"
    assert result.stderr == ""
    shown = json_output(cli("agents", "show", result.stdout.strip(), "--json"))
    assert shown["name"] == "Digest"


def test_create_json_takes_every_option(cli: Cli) -> None:
    result = cli(
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
        "created_at": "",
        "updated_at": "",
    }
    assert agent["created_at"].endswith("Z")
    assert json_output(cli("agents", "show", str(agent["id"]), "--json")) == agent


def test_create_defaults(cli: Cli) -> None:
    agent = json_output(cli("agents", "create", "--name", "a", "--model", MODEL, "--json"))

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
def test_create_rejects_invalid_input(cli: Cli, options: list[str], expected: str) -> None:
    # An option given twice takes its last value, so `options` can override --name and --model.
    result = cli("agents", "create", "--name", "ok", "--model", MODEL, *options, "--json")

    assert expected in error_line(result, EXIT_INVALID)
    assert json_output(cli("agents", "list", "--json")) == []


def test_create_error_names_every_invalid_field(cli: Cli) -> None:
    result = cli("agents", "create", "--name", "x", "--model", "gpt", "--schedule", "nope")

    line = error_line(result, EXIT_INVALID)
    assert "model:" in line
    assert "schedule:" in line


def test_create_without_a_required_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("agents", "create", "--name", "x")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--model" in result.stderr


def test_list_on_an_empty_database(cli: Cli) -> None:
    assert json_output(cli("agents", "list", "--json")) == []
    table = cli("agents", "list")
    assert table.exit_code == 0
    assert table.stdout.split() == ["ID", "STATUS", "MODEL", "SCHEDULE", "NAME"]
    assert table.stderr == ""


def test_list_prints_a_table_oldest_first(cli: Cli) -> None:
    first = create(cli, "Digest", "--schedule", "0 7 * * *")
    second = create(cli, "Helper")

    result = cli("agents", "list")

    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["ID", "STATUS", "MODEL", "SCHEDULE", "NAME"]
    assert [row.split() for row in rows] == [
        [str(first), "idle", MODEL, "0", "7", "*", "*", "*", "Digest"],
        [str(second), "idle", MODEL, "-", "Helper"],
    ]
    assert result.stderr == ""


def test_list_json_matches_show(cli: Cli) -> None:
    ids = [create(cli, name) for name in ("a", "b", "c")]

    agents = json_output(cli("agents", "list", "--json"))

    assert [agent["id"] for agent in agents] == ids
    assert [agent["name"] for agent in agents] == ["a", "b", "c"]
    assert agents[1] == json_output(cli("agents", "show", str(ids[1]), "--json"))


def _next_page_hint(stderr: str) -> str:
    prefix = "more: zerg agents list --after "
    (line,) = stderr.splitlines()
    assert line.startswith(prefix), line
    return line.removeprefix(prefix)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_list_pages_with_limit_and_after(cli: Cli, as_json: bool) -> None:
    ids = [create(cli, f"agent {n}") for n in range(5)]
    flags = ["--json"] if as_json else []

    def page(*options: str) -> tuple[list[int], str]:
        result = cli("agents", "list", "--limit", "2", *flags, *options)
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


def test_list_rejects_a_cursor_it_did_not_issue(cli: Cli) -> None:
    result = cli("agents", "list", "--after", "not-a-cursor")

    assert "'after' is not a cursor" in error_line(result, EXIT_INVALID)


@pytest.mark.parametrize("limit", ["0", "201", "many"])
def test_list_rejects_a_bad_limit(cli: Cli, limit: str) -> None:
    result = cli("agents", "list", "--limit", limit)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--limit" in result.stderr


def test_show_prints_every_field(cli: Cli) -> None:
    agent_id = create(cli, "Digest", "--tool", "http_get", "--task", "Summarise.")

    result = cli("agents", "show", str(agent_id))

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


def test_delete_removes_the_agent(cli: Cli) -> None:
    keep = create(cli, "keep")
    gone = create(cli, "gone")

    result = cli("agents", "delete", str(gone))

    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"deleted agent {gone}\n"
    assert [agent["id"] for agent in json_output(cli("agents", "list", "--json"))] == [keep]
    assert "does not exist" in error_line(cli("agents", "show", str(gone)), EXIT_NOT_FOUND)


@pytest.mark.parametrize(
    "args",
    [["show", "999"], ["show", "999", "--json"], ["delete", "999"]],
    ids=["show", "show-json", "delete"],
)
def test_a_missing_agent_is_not_found(cli: Cli, args: list[str]) -> None:
    create(cli, "someone else")

    result = cli("agents", *args)

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


# Errors that come from the database rather than the input: one line each, never a traceback.


@pytest.mark.parametrize(
    "args",
    [["list"], ["show", "1"], ["delete", "1"], ["create", "--name", "x", "--model", MODEL]],
    ids=["list", "show", "delete", "create"],
)
def test_an_unmigrated_database_says_to_run_db_upgrade(
    empty_database_url: str, data_dir: Path, args: list[str]
) -> None:
    cli = Cli({"ZERG_DATABASE_URL": empty_database_url, "ZERG_DATA_DIR": str(data_dir)})

    line = error_line(cli("agents", *args), 1)

    assert "cannot use the database" in line
    assert "`zerg db upgrade`" in line


def test_an_unreachable_postgresql_is_one_error_line(data_dir: Path) -> None:
    url = f"postgresql+psycopg://zerg:s3cret@127.0.0.1:{free_port()}/zerg"
    cli = Cli({"ZERG_DATABASE_URL": url, "ZERG_DATA_DIR": str(data_dir)})

    line = error_line(cli("agents", "list"), 1)

    assert "cannot use the database at postgresql+psycopg://zerg:***@127.0.0.1" in line
    assert "Connection refused" in line
    assert "s3cret" not in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "ZERG_DATABASE_URL is not a database URL"),
        ("nosuchdb://localhost/zerg", "ZERG_DATABASE_URL is not a database URL"),
    ],
)
def test_a_bad_database_url_is_one_error_line(data_dir: Path, url: str, expected: str) -> None:
    cli = Cli({"ZERG_DATABASE_URL": url, "ZERG_DATA_DIR": str(data_dir)})

    assert expected in error_line(cli("agents", "list"), 1)
