"""`zerg db upgrade`: creates the schema where there is none, and says clearly when it cannot."""

import importlib.util
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from tests.cli.runner import Cli, error_line, json_output
from tests.support.postgres import free_port
from zerg.db.engine import create_db_engine
from zerg.db.migrate import heads
from zerg.models import Base


def schema_of(url: str) -> tuple[set[str], str | None]:
    """The tables of the database at `url`, and its Alembic revision."""
    engine = create_db_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        if "alembic_version" not in tables:
            return tables, None
        with engine.connect() as conn:
            return tables, conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


EVERY_TABLE = {*Base.metadata.tables, "alembic_version"}


def test_upgrade_creates_the_data_dir_and_sqlite_file(bare_cli: Cli, data_dir: Path) -> None:
    assert not data_dir.exists()

    result = bare_cli("db", "upgrade")

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert result.stdout == ""
    assert result.stderr == f"database at sqlite:///{data_dir / 'zerg.db'} is up to date\n"
    assert (data_dir / "zerg.db").is_file()
    assert schema_of(f"sqlite:///{data_dir / 'zerg.db'}") == (EVERY_TABLE, heads()[0])


def test_upgrade_fills_an_existing_empty_sqlite_file(bare_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "existing.db"
    path.touch()

    result = bare_cli("db", "upgrade", ZERG_DATABASE_URL=f"sqlite:///{path}")

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert schema_of(f"sqlite:///{path}") == (EVERY_TABLE, heads()[0])


def test_upgrade_creates_the_schema_and_is_idempotent(
    empty_database_url: str, data_dir: Path
) -> None:
    cli = Cli({"ZERG_DATABASE_URL": empty_database_url, "ZERG_DATA_DIR": str(data_dir)})

    first = cli("db", "upgrade")
    assert first.exit_code == 0, (first.stderr, first.exception)
    assert schema_of(empty_database_url) == (EVERY_TABLE, heads()[0])
    assert cli("users", "create", "kept").exit_code == 0

    second = cli("db", "upgrade")

    assert second.exit_code == 0, (second.stderr, second.exception)
    assert second.stdout == ""
    assert second.stderr == first.stderr
    assert schema_of(empty_database_url) == (EVERY_TABLE, heads()[0])
    kept = json_output(cli("users", "list", "--json"))
    assert [user["name"] for user in kept] == ["kept"]


def test_upgrade_of_an_unreachable_postgresql_is_one_error_line(data_dir: Path) -> None:
    port = free_port()
    url = f"postgresql+psycopg://zerg:s3cret@127.0.0.1:{port}/zerg"
    cli = Cli({"ZERG_DATABASE_URL": url, "ZERG_DATA_DIR": str(data_dir)})

    line = error_line(cli("db", "upgrade"), 1)

    assert line.startswith(
        f"error: cannot reach the database at postgresql+psycopg://zerg:***@127.0.0.1:{port}/zerg"
    )
    assert "Connection refused" in line
    assert line.endswith("check ZERG_DATABASE_URL")
    assert "s3cret" not in line


def test_upgrade_of_a_missing_postgresql_database_is_one_error_line(
    postgres_url_for_missing_db: str, data_dir: Path
) -> None:
    cli = Cli({"ZERG_DATABASE_URL": postgres_url_for_missing_db, "ZERG_DATA_DIR": str(data_dir)})

    line = error_line(cli("db", "upgrade"), 1)

    assert 'database "zerg_no_such_database" does not exist' in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "error: ZERG_DATABASE_URL is not a database URL"),
        ("nosuchdb://localhost/zerg", "error: ZERG_DATABASE_URL is not a database URL"),
        ("sqlite:////proc/no/such/dir/zerg.db", "error: cannot create the directory"),
    ],
    ids=["unparsable", "unknown-dialect", "uncreatable-dir"],
)
def test_upgrade_with_a_bad_database_url_is_one_error_line(
    bare_cli: Cli, url: str, expected: str
) -> None:
    line = error_line(bare_cli("db", "upgrade", ZERG_DATABASE_URL=url), 1)

    assert line.startswith(expected)


@pytest.mark.skipif(importlib.util.find_spec("MySQLdb") is not None, reason="MySQLdb installed")
def test_upgrade_with_a_missing_driver_is_one_error_line(bare_cli: Cli) -> None:
    result = bare_cli("db", "upgrade", ZERG_DATABASE_URL="mysql+mysqldb://zerg@127.0.0.1/zerg")

    line = error_line(result, 1)
    assert "needs a database driver that is not installed" in line
    assert "MySQLdb" in line


def test_upgrade_with_an_invalid_setting_names_the_variable(bare_cli: Cli) -> None:
    line = error_line(bare_cli("db", "upgrade", ZERG_LOG_LEVEL="loud"), 1)

    assert line.startswith("error: invalid ZERG_LOG_LEVEL: ")


def test_upgrade_expands_a_tilde_in_the_data_dir(bare_cli: Cli, tmp_path: Path) -> None:
    # Set without a shell to expand it, e.g. in a systemd unit or a .env file.
    result = bare_cli("db", "upgrade", ZERG_DATA_DIR="~/zerg-data")

    assert result.exit_code == 0, (result.stderr, result.exception)
    expected = tmp_path / "home" / "zerg-data" / "zerg.db"
    assert schema_of(f"sqlite:///{expected}") == (EVERY_TABLE, heads()[0])
