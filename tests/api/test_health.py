"""GET /health: the server answers, and says whether its database does."""

from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.support.postgres import free_port
from zerg.api.deps import get_database
from zerg.db import Database
from zerg.settings import Settings


def test_health_reports_database_ok(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_while_the_database_does_not_answer(
    app: FastAPI, client: httpx.Client, tmp_path: Path
) -> None:
    # The server needs its database to start (the run engine launches on it), so the database
    # goes away afterwards: the app is pointed at a loopback port nothing listens on.
    dead = Database(
        Settings(
            database_url=f"postgresql+psycopg://zerg@127.0.0.1:{free_port()}/zerg",
            data_dir=tmp_path,
        )
    )
    app.dependency_overrides[get_database] = lambda: dead
    try:
        response = client.get("/health")
    finally:
        del app.dependency_overrides[get_database]
        dead.dispose()

    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "database": "unreachable",
        "detail": "the database does not answer; check ZERG_DATABASE_URL and the server",
        "code": "database_unavailable",
    }
    # Once the database answers again, so does the health check.
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}
