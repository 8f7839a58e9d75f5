"""`zerg users`: create (with a first token shown once), list, disable and set-password."""

from pathlib import Path

import pytest
from typer.testing import Result

from tests.cli.runner import Cli, error_line, json_output
from zerg.cli import app
from zerg.cli import users as users_cli
from zerg.db import Database
from zerg.errors import Unauthorized
from zerg.services import users as service

EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
PASSWORD = "correct horse battery"


def set_password(cli: Cli, name: str, stdin: str) -> Result:
    """`zerg users set-password NAME` reading `stdin` (the `Cli` helper passes no input)."""
    return cli.runner.invoke(app, ["users", "set-password", name], input=stdin, env=cli.env)


def create(cli: Cli, name: str, *options: str) -> str:
    """Create a user; returns the token it printed."""
    result = cli("users", "create", name, *options)
    assert result.exit_code == 0, (result.stderr, result.exception)
    return result.stdout.strip()


def test_create_prints_the_first_token_once_and_how_to_use_it(cli: Cli, database: Database) -> None:
    result = cli("users", "create", "alice", "--admin")

    assert result.exit_code == 0, (result.stderr, result.exception)
    token = result.stdout.strip()
    assert token.startswith("zerg_")
    # Only the token on stdout, so `TOKEN=$(zerg users create ...)` works.
    assert result.stdout == f"{token}\n"
    assert token not in result.stderr
    assert "created admin 'alice'" in result.stderr
    assert "will not be shown again" in result.stderr
    assert "Authorization: Bearer <token>" in result.stderr
    assert "ZERG_TOKEN" in result.stderr
    assert "every API request needs a token from now on" in result.stderr
    with database.session() as session:
        actor = service.authenticate(token, session=session)
    assert (actor.name, actor.is_admin) == ("alice", True)


def test_only_the_first_user_announces_auth_mode(cli: Cli) -> None:
    cli("users", "create", "alice", "--admin")

    result = cli("users", "create", "bob")

    assert result.exit_code == 0, result.stderr
    assert "created user 'bob'" in result.stderr
    assert "now has users" not in result.stderr


def test_create_json_has_the_user_and_the_token(cli: Cli, database: Database) -> None:
    created = json_output(cli("users", "create", "bob", "--json"))

    assert set(created) == {"user", "token"}
    assert created["user"] | {"created_at": ""} == {
        "name": "bob",
        "admin": False,
        "disabled": False,
        "has_password": False,
        "created_at": "",
    }
    assert created["user"]["created_at"].endswith("Z")
    with database.session() as session:
        assert service.authenticate(created["token"], session=session).is_admin is False


def test_create_migrates_a_new_database_first(bare_cli: Cli, data_dir: Path) -> None:
    assert not data_dir.exists()

    token = create(bare_cli, "alice", "--admin")

    assert (data_dir / "zerg.db").is_file()
    assert token.startswith("zerg_")
    assert [u["name"] for u in json_output(bare_cli("users", "list", "--json"))] == ["alice"]


def test_create_refuses_a_taken_name(cli: Cli) -> None:
    create(cli, "alice")

    line = error_line(cli("users", "create", "alice"), EXIT_INVALID)

    assert line == "error: a user named 'alice' exists already"


@pytest.mark.parametrize("name", ["-bob", "bob smith", "a" * 65, "ünïcode"])
def test_create_refuses_an_invalid_name(cli: Cli, name: str) -> None:
    line = error_line(cli("users", "create", "--", name), EXIT_INVALID)

    assert "must be 1-64 letters, digits" in line
    assert json_output(cli("users", "list", "--json")) == []


def test_list_shows_users_oldest_first_never_a_hash(cli: Cli) -> None:
    create(cli, "alice", "--admin")
    create(cli, "bob")
    assert set_password(cli, "bob", f"{PASSWORD}\n").exit_code == 0
    assert cli("users", "disable", "bob").exit_code == 0

    table = cli("users", "list")
    listed = json_output(cli("users", "list", "--json"))

    assert table.exit_code == 0 and table.stderr == ""
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ADMIN", "DISABLED", "PASSWORD", "CREATED"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["alice", "yes", "no", "no"],
        ["bob", "no", "yes", "yes"],
    ]
    assert [(u["name"], u["admin"], u["disabled"], u["has_password"]) for u in listed] == [
        ("alice", True, False, False),
        ("bob", False, True, True),
    ]
    for output in (table.stdout, cli("users", "list", "--json").stdout):
        assert "argon2" not in output
        assert "hash" not in output


def test_list_on_a_database_without_users(cli: Cli) -> None:
    assert json_output(cli("users", "list", "--json")) == []
    assert cli("users", "list").stdout.splitlines() == [
        "NAME                     ADMIN  DISABLED  PASSWORD  CREATED"
    ]


def test_disable_stops_the_users_tokens_and_password(cli: Cli, database: Database) -> None:
    token = create(cli, "bob")
    set_password(cli, "bob", f"{PASSWORD}\n")

    result = cli("users", "disable", "bob")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == "disabled user 'bob': their API tokens and password no longer work\n"
    with database.session() as session:
        with pytest.raises(Unauthorized, match="user 'bob' is disabled"):
            service.authenticate(token, session=session)
        with pytest.raises(Unauthorized):
            service.check_password("bob", PASSWORD, session=session)


def test_disable_an_unknown_user_is_not_found(cli: Cli) -> None:
    line = error_line(cli("users", "disable", "nobody"), EXIT_NOT_FOUND)

    assert line == "error: no user named 'nobody'; `zerg users list` shows them"


# set-password: a prompt in a terminal, one line of stdin in a script, never an argument.


def test_set_password_reads_one_line_of_stdin(cli: Cli, database: Database) -> None:
    create(cli, "alice")

    result = set_password(cli, "alice", f"{PASSWORD}\n")

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout == ""
    assert result.stderr == "password of 'alice' set\n"
    with database.session() as session:
        assert service.check_password("alice", PASSWORD, session=session).name == "alice"


def test_set_password_keeps_spaces_and_takes_stdin_without_a_newline(
    cli: Cli, database: Database
) -> None:
    create(cli, "alice")

    assert set_password(cli, "alice", f" {PASSWORD} ").exit_code == 0

    with database.session() as session:
        service.check_password("alice", f" {PASSWORD} ", session=session)


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        ("", "error: no password on stdin"),
        ("\n", "error: no password on stdin"),
        (f"{PASSWORD}\n{PASSWORD}\n", "error: the password on stdin must be one line"),
        ("short\n", "error: a password needs at least 8 characters"),
    ],
)
def test_set_password_refuses_bad_stdin(cli: Cli, stdin: str, expected: str) -> None:
    create(cli, "alice")

    line = error_line(set_password(cli, "alice", stdin), EXIT_INVALID)

    assert line.startswith(expected)
    assert json_output(cli("users", "list", "--json"))[0]["has_password"] is False


def test_set_password_for_an_unknown_user_is_not_found(cli: Cli) -> None:
    line = error_line(set_password(cli, "nobody", f"{PASSWORD}\n"), EXIT_NOT_FOUND)

    assert line == "error: no user named 'nobody'; `zerg users list` shows them"


def test_set_password_takes_no_password_argument(cli: Cli) -> None:
    create(cli, "alice")

    result = cli("users", "set-password", "alice", PASSWORD)

    assert result.exit_code == 2  # a usage error: there is no such argument
    assert PASSWORD not in result.stdout


def test_set_password_asks_twice_in_a_terminal(
    cli: Cli, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users_cli, "_stdin_is_terminal", lambda: True)
    create(cli, "alice")

    # A mismatch asks again; the second pair matches.
    result = set_password(cli, "alice", f"{PASSWORD}\nsomething else\n{PASSWORD}\n" * 2)

    assert result.exit_code == 0, (result.stderr, result.exception)
    # Prompts go to stderr (stdout is for data), and the hidden input is never echoed. The
    # runner's stand-in for getpass writes its blank prompt to stdout; getpass uses the terminal.
    assert result.stdout.strip() == ""
    assert result.stderr.count("Password for alice:") == 2
    assert "Repeat for confirmation:" in result.stderr
    assert "do not match" in result.stderr
    assert PASSWORD not in result.stderr
    with database.session() as session:
        service.check_password("alice", PASSWORD, session=session)
