"""Fixtures for the CLI tests: `zerg` run in-process by Typer's CliRunner."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.cli.runner import Cli
from tests.support.postgres import PostgresServer
from tests.support.waiting import wait_for
from zerg.db import Database
from zerg.services import users


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the variables a test passes reach the CLI, and nothing can fall back to ~/.zerg or
    to the token of a real `zerg login`."""
    for name in list(os.environ):
        if name.startswith("ZERG_") and name != "ZERG_TEST_BACKENDS":
            monkeypatch.delenv(name)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def bare_cli(data_dir: Path) -> Cli:
    """The CLI with only ZERG_DATA_DIR set: the embedded SQLite file, not created yet."""
    return Cli({"ZERG_DATA_DIR": str(data_dir)})


@pytest.fixture
def cli(database_url: str, data_dir: Path, request: pytest.FixtureRequest) -> Cli:
    """The CLI on a fresh migrated database, on each backend; in a test that also serves that
    database (`base_url`), talking to that server."""
    env = {"ZERG_DATABASE_URL": database_url, "ZERG_DATA_DIR": str(data_dir)}
    if "base_url" in request.fixturenames:
        env["ZERG_SERVER_URL"] = request.getfixturevalue("base_url")
    return Cli(env)


@pytest.fixture
def api_cli(cli: Cli, base_url: str) -> Cli:
    """The CLI talking to a real server (`base_url`) that serves the same fresh database."""
    return Cli({**cli.env, "ZERG_SERVER_URL": base_url})


class Member(NamedTuple):
    id: int
    token: str


@pytest.fixture
def add_user(database: Database, base_url: str) -> Callable[[str], Member]:
    """Adds a user (not an admin) with an API token, and waits until the server at `base_url`
    requires tokens: the first user switches it to auth mode."""

    def add(name: str) -> Member:
        with database.session() as session:
            user = users.create_user(name, admin=False, session=session)
            _, token = users.create_token(user, session=session)
            session.commit()
            member = Member(user.id, token)
        wait_for(
            lambda: httpx.get(f"{base_url}/api/agents").status_code == 401,
            "the server to require tokens",
            timeout_s=10,
        )
        return member

    return add


@pytest.fixture
def postgres_url_for_missing_db(request: pytest.FixtureRequest) -> str:
    """A URL naming a database the test PostgreSQL server does not have."""
    if "postgresql" not in os.environ.get("ZERG_TEST_BACKENDS", "sqlite,postgresql").split(","):
        pytest.skip(reason="PostgreSQL is not in ZERG_TEST_BACKENDS")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.url_for("zerg_no_such_database")
