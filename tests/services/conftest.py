"""A real `zerg serve` process on the test's database, for kill -9 and restart tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openai_server import FakeOpenAI
from tests.support.processes import ZergProcess


@pytest.fixture
def zerg(database_url: str, tmp_path: Path, openai_server: FakeOpenAI) -> Iterator[ZergProcess]:
    env = {
        "ZERG_DATABASE_URL": database_url,
        "ZERG_DATA_DIR": str(tmp_path / "data"),
        # The agents' config.base_url: the fake OpenAI server, listed as an operator would.
        "ZERG_MODEL_BASE_URLS": f"{openai_server.base_url}/v1",
    }
    process = ZergProcess(env, tmp_path / "zerg.log")
    yield process
    process.stop()
