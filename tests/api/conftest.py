"""Fixtures of the API tests: a frozen clock, agents made over HTTP, rows made in the database."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import T0, AgentFactory, FrozenClock, Rows
from zerg import clock as zerg_clock
from zerg.db import Database


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    frozen = FrozenClock(T0)
    zerg_clock.set_clock(frozen)
    try:
        yield frozen
    finally:
        zerg_clock.set_clock(None)


@pytest.fixture
def rows(database: Database) -> Rows:
    return Rows(database)


@pytest.fixture
def make_agent(client: httpx.Client) -> AgentFactory:
    """POST an agent (name and model defaulted) and return the created body."""

    def make(**fields: Any) -> dict[str, Any]:
        response = client.post(
            "/api/agents", json={"name": "Helper", "model": "openai:gpt-4o-mini", **fields}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return make
