"""Fixtures of the API tests: agents made over HTTP, rows made in the database, an async HTTP
client."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import AgentFactory, Rows
from zerg.db import Database


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An async HTTP client of the test's server (for SSE streams read as they come)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


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
