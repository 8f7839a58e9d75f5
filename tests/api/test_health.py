"""GET /health: the server answers, and says whether its database does."""

from pathlib import Path

import httpx

from tests.support.postgres import free_port
from tests.support.server import serve_in_thread
from zerg.api.app import create_app
from zerg.settings import Settings


def test_health_reports_database_ok(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    # A PostgreSQL URL on a loopback port nothing listens on: connecting is refused at once.
    settings = Settings(
        database_url=f"postgresql+psycopg://zerg@127.0.0.1:{free_port()}/zerg",
        data_dir=tmp_path,
    )

    with serve_in_thread(create_app(settings)) as url, httpx.Client(base_url=url) as http:
        response = http.get("/health")

    assert response.status_code == 503
    assert response.json() == {
        "status": "error",
        "database": "unreachable",
        "detail": "the database does not answer; check ZERG_DATABASE_URL and the server",
        "code": "database_unavailable",
    }
