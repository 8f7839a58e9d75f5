"""The embedded databases hold secrets: a fresh data directory is 0700, every SQLite file 0600."""

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from zerg.db import Database
from zerg.db.engine import private_sqlite_file
from zerg.db.migrate import upgrade
from zerg.engine import RunEngine
from zerg.settings import Settings


@pytest.fixture
def umask() -> Iterator[None]:
    """The usual umask, which leaves files readable by everyone unless created otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _never_called(run_id: int) -> None:
    raise AssertionError(f"run {run_id} was executed")


@pytest.mark.usefixtures("umask")
def test_a_fresh_data_dir_and_every_database_file_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    database = Database(settings)
    engine = RunEngine(Settings(database_url=settings.resolved_database_url), _never_called)
    try:
        upgrade(database.engine)
        engine.launch()
        # Checked while both are open: SQLite removes the -wal and -shm files on the last close.
        files = {path.name: mode(path) for path in data_dir.glob("zerg*.db*")}
    finally:
        engine.shutdown()
        database.dispose()

    assert mode(data_dir) == 0o700
    assert set(files) == {
        f"{name}{suffix}"
        for name in ("zerg.db", "zerg-engine.db")
        for suffix in ("", "-wal", "-shm")
    }
    assert files == dict.fromkeys(files, 0o600)


@pytest.mark.usefixtures("umask")
def test_an_existing_directory_and_file_keep_their_permissions(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    (shared / "zerg.db").touch(mode=0o640)

    private_sqlite_file(shared / "zerg.db")
    private_sqlite_file(shared / "new.db")

    assert mode(shared) == 0o750
    assert mode(shared / "zerg.db") == 0o640
    assert mode(shared / "new.db") == 0o600
