"""`zerg login` and `zerg logout`: the token is read (never an argument), checked with the
server, kept 0600 in a 0700 directory, used by later commands, and never printed."""

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from tests.cli.conftest import Member
from tests.cli.runner import Cli, error_line, json_output
from tests.support.postgres import free_port
from zerg.cli import app
from zerg.cli import login as login_cli

MODEL = "scripted:demo"


def login(cli: Cli, stdin: str, *args: str, **env: str) -> Result:
    """`zerg login` reading `stdin` (the `Cli` helper passes no input)."""
    return cli.runner.invoke(app, ["login", *args], input=stdin, env={**cli.env, **env})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def xdg_cli(api_cli: Cli, config_home: Path) -> Cli:
    """The CLI talking to the test's server, with its config directory under tmp_path."""
    return Cli({**api_cli.env, "XDG_CONFIG_HOME": str(config_home)})


def test_login_keeps_the_token_for_later_commands_and_logout_forgets_it(
    xdg_cli: Cli, add_user: Callable[[str], Member], config_home: Path, base_url: str
) -> None:
    ada = add_user("ada")
    token_file = config_home / "zerg" / "token"

    logged_in = login(xdg_cli, f"{ada.token}\n")

    assert logged_in.exit_code == 0, logged_in.stderr
    assert logged_in.stdout == ""
    assert logged_in.stderr == (
        f"logged in to {base_url} as 'ada'; the token is kept in {token_file}\n"
    )
    assert token_file.read_text() == f"{ada.token}\n"
    assert mode(token_file) == 0o600
    assert mode(token_file.parent) == 0o700
    assert [p.name for p in token_file.parent.iterdir()] == ["token"]

    created = xdg_cli("agents", "create", "--name", "a", "--model", MODEL, "--json")
    listed = xdg_cli("agents", "list")
    assert json_output(created)["owner_id"] == ada.id
    assert listed.exit_code == 0 and "a" in listed.stdout.split()

    logged_out = xdg_cli("logout")
    assert logged_out.exit_code == 0
    assert logged_out.stderr == f"logged out: removed the API token in {token_file}\n"
    assert not token_file.exists()
    assert "run `zerg login`" in error_line(xdg_cli("agents", "list"), 1)
    again = xdg_cli("logout")
    assert again.exit_code == 0
    assert again.stderr == f"not logged in: there is no token in {token_file}\n"
    outputs = [logged_in, created, listed, logged_out, again]
    assert all(ada.token not in r.stdout + r.stderr for r in outputs)


def test_the_token_goes_to_dot_config_without_xdg_config_home(
    api_cli: Cli, add_user: Callable[[str], Member], tmp_path: Path
) -> None:
    ada = add_user("ada")

    assert login(api_cli, ada.token).exit_code == 0  # stdin without a final newline

    token_file = tmp_path / "home" / ".config" / "zerg" / "token"
    assert token_file.read_text() == f"{ada.token}\n"
    assert mode(token_file) == 0o600
    assert mode(token_file.parent) == 0o700
    assert json_output(api_cli("agents", "list", "--json")) == []


def test_in_a_terminal_the_token_is_asked_without_echo(
    xdg_cli: Cli,
    add_user: Callable[[str], Member],
    config_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = add_user("ada")
    monkeypatch.setattr(login_cli, "_stdin_is_terminal", lambda: True)

    result = login(xdg_cli, f"{ada.token}\n")

    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("API token:")
    assert "logged in to" in result.stderr
    assert ada.token not in result.stdout + result.stderr
    assert (config_home / "zerg" / "token").read_text() == f"{ada.token}\n"


def test_a_new_login_replaces_the_old_one_and_tightens_the_directory(
    xdg_cli: Cli, add_user: Callable[[str], Member], config_home: Path
) -> None:
    ada, bob = add_user("ada"), add_user("bob")
    (config_home / "zerg").mkdir(parents=True, mode=0o755)
    (config_home / "zerg").chmod(0o755)
    assert login(xdg_cli, ada.token).exit_code == 0
    json_output(xdg_cli("agents", "create", "--name", "ada's", "--model", MODEL, "--json"))

    result = login(xdg_cli, bob.token)

    assert result.exit_code == 0, result.stderr
    assert "as 'bob'" in result.stderr
    token_file = config_home / "zerg" / "token"
    assert token_file.read_text() == f"{bob.token}\n"
    assert mode(token_file) == 0o600
    assert mode(token_file.parent) == 0o700
    assert [p.name for p in token_file.parent.iterdir()] == ["token"]
    assert json_output(xdg_cli("agents", "list", "--json")) == []


def test_zerg_token_wins_over_the_login(xdg_cli: Cli, add_user: Callable[[str], Member]) -> None:
    ada, bob = add_user("ada"), add_user("bob")
    json_output(
        xdg_cli("agents", "create", "--name", "a", "--model", MODEL, "--json", ZERG_TOKEN=ada.token)
    )

    result = login(xdg_cli, bob.token, ZERG_TOKEN=ada.token)

    assert result.exit_code == 0, result.stderr
    assert "ZERG_TOKEN is set, and commands send it instead until it is unset" in result.stderr
    assert len(json_output(xdg_cli("agents", "list", "--json", ZERG_TOKEN=ada.token))) == 1
    assert json_output(xdg_cli("agents", "list", "--json")) == []
    logged_out = xdg_cli("logout", ZERG_TOKEN=ada.token)
    assert "ZERG_TOKEN is still set" in logged_out.stderr


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        ("", "error: no API token on stdin"),
        ("\n", "error: no API token on stdin"),
        ("zerg_one\nzerg_two\n", "error: the API token on stdin must be one line"),
        ("hunter2 my password\n", "error: that is not an API token: one starts with zerg_"),
        ("zerg_has a space\n", "error: that is not an API token"),
    ],
    ids=["empty", "blank", "two-lines", "not-a-token", "space"],
)
def test_login_refuses_what_cannot_be_a_token_before_asking_the_server(
    cli: Cli, config_home: Path, stdin: str, expected: str
) -> None:
    # No server runs here: these are refused before any request.
    env = {
        "XDG_CONFIG_HOME": str(config_home),
        "ZERG_SERVER_URL": f"http://127.0.0.1:{free_port()}",
    }

    line = error_line(login(cli, stdin, **env), 4)

    assert line.startswith(expected)
    assert "hunter2" not in line
    assert not config_home.exists()


def test_login_refuses_a_token_the_server_does_not_know(
    xdg_cli: Cli, add_user: Callable[[str], Member], config_home: Path, base_url: str
) -> None:
    add_user("ada")
    wrong = "zerg_" + "W" * 43

    line = error_line(login(xdg_cli, wrong), 1)

    assert line == (
        f"error: Zerg at {base_url} refused the API token from your input: unknown API token "
        "(unauthorized); check it, or ask an admin for a new one (`zerg tokens create`); "
        "nothing was stored"
    )
    assert not (config_home / "zerg" / "token").exists()


def test_a_failed_login_keeps_the_previous_one(
    xdg_cli: Cli, add_user: Callable[[str], Member], config_home: Path
) -> None:
    ada = add_user("ada")
    assert login(xdg_cli, ada.token).exit_code == 0

    error_line(login(xdg_cli, "zerg_" + "W" * 43), 1)

    assert (config_home / "zerg" / "token").read_text() == f"{ada.token}\n"


def test_login_to_a_local_mode_server_stores_nothing(
    xdg_cli: Cli, config_home: Path, base_url: str
) -> None:
    line = error_line(login(xdg_cli, "zerg_" + "A" * 43), 1)

    assert line == (
        f"error: Zerg at {base_url} has no users (local mode), so it takes no token; "
        "nothing was stored"
    )
    assert not (config_home / "zerg" / "token").exists()


def test_login_to_an_unreachable_server_stores_nothing(cli: Cli, config_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {"XDG_CONFIG_HOME": str(config_home)}

    line = error_line(login(cli, "zerg_" + "A" * 43, "--server", url, **env), 1)

    assert f"cannot reach Zerg at {url}" in line
    assert not config_home.exists()


def test_login_server_option_says_how_other_commands_reach_it(
    cli: Cli, add_user: Callable[[str], Member], config_home: Path, base_url: str
) -> None:
    ada = add_user("ada")
    env = {"XDG_CONFIG_HOME": str(config_home)}
    cli = Cli({name: value for name, value in cli.env.items() if name != "ZERG_SERVER_URL"})

    result = login(cli, ada.token, "--server", base_url, **env)

    assert result.exit_code == 0, result.stderr
    assert f"logged in to {base_url} as 'ada'" in result.stderr
    assert f"set ZERG_SERVER_URL={base_url} to use this server" in result.stderr
    agents = cli("agents", "list", "--json", ZERG_SERVER_URL=base_url, **env)
    assert json_output(agents) == []


def test_the_token_is_never_a_command_line_argument(cli: Cli, config_home: Path) -> None:
    result = cli("login", "zerg_" + "A" * 43, XDG_CONFIG_HOME=str(config_home))

    assert result.exit_code == 2
    assert "unexpected extra argument" in result.stderr.lower()
    assert not config_home.exists()


@pytest.mark.parametrize(
    "content", ["", "zerg_a b\n", b"\xff\xfe".decode("latin-1")], ids=["empty", "space", "binary"]
)
def test_an_unusable_token_file_is_one_error_line(
    xdg_cli: Cli, config_home: Path, content: str
) -> None:
    token_file = config_home / "zerg" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(content, encoding="latin-1")

    line = error_line(xdg_cli("agents", "list"), 1)

    assert str(token_file) in line
    assert "run `zerg login` again" in line
    assert "zerg_a" not in line
