"""Fixtures for the database tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.db.empty_database import empty_database


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A new database with no tables, on each backend."""
    with empty_database(backend, tmp_path, request) as url:
        yield url
