"""Distributed mode refuses SQLite with one line naming the fix."""

from pathlib import Path

import pytest

from tests.cli.runner import Cli, error_line


@pytest.mark.parametrize("args", [["worker", "--id", "w1"], ["serve", "--no-execute"]])
def test_distributed_mode_refuses_sqlite(args: list[str], tmp_path: Path) -> None:
    cli = Cli({"ZERG_DATA_DIR": str(tmp_path), "ZERG_DATABASE_URL": ""})
    line = error_line(cli(*args), 1)
    assert "needs PostgreSQL" in line
    assert "ZERG_DATABASE_URL=postgresql+psycopg://" in line
    assert not (tmp_path / "zerg.db").exists()


def test_an_api_replica_can_be_chosen_by_setting(tmp_path: Path) -> None:
    cli = Cli({"ZERG_DATA_DIR": str(tmp_path), "ZERG_EXECUTE_RUNS": "false"})
    assert "zerg serve --no-execute" in error_line(cli("serve"), 1)
