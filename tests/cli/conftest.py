"""Fixtures for the CLI tests: `zerg` run in-process by Typer's CliRunner."""

import os
from pathlib import Path

import pytest

from tests.cli.runner import Cli
from tests.support.postgres import PostgresServer


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the variables a test passes reach the CLI, and nothing can fall back to ~/.zerg."""
    for name in list(os.environ):
        if name.startswith("ZERG_") and name != "ZERG_TEST_BACKENDS":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def bare_cli(data_dir: Path) -> Cli:
    """The CLI with only ZERG_DATA_DIR set: the embedded SQLite file, not created yet."""
    return Cli({"ZERG_DATA_DIR": str(data_dir)})


@pytest.fixture
def cli(database_url: str, data_dir: Path) -> Cli:
    """The CLI on a fresh migrated database, on each backend."""
    return Cli({"ZERG_DATABASE_URL": database_url, "ZERG_DATA_DIR": str(data_dir)})


@pytest.fixture
def postgres_url_for_missing_db(request: pytest.FixtureRequest) -> str:
    """A URL naming a database the test PostgreSQL server does not have."""
    if "postgresql" not in os.environ.get("ZERG_TEST_BACKENDS", "sqlite,postgresql").split(","):
        pytest.skip(reason="PostgreSQL is not in ZERG_TEST_BACKENDS")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.url_for("zerg_no_such_database")
