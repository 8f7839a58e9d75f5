"""A real `zerg serve` process on the test's database, for kill -9 and restart tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ZergProcess


@pytest.fixture
def zerg(database_url: str, tmp_path: Path) -> Iterator[ZergProcess]:
    process = ZergProcess(
        {"ZERG_DATABASE_URL": database_url, "ZERG_DATA_DIR": str(tmp_path / "data")},
        tmp_path / "zerg.log",
    )
    yield process
    process.stop()
