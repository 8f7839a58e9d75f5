"""The error contract every route shares: `{"detail": ..., "code": ...}` with a stable code."""

import logging
import re

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.support.server import serve_in_thread
from zerg.api.app import create_app
from zerg.settings import Settings


def test_an_unknown_route_is_404(client: httpx.Client) -> None:
    response = client.get("/api/widgets")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "no such route; see /docs for the API",
        "code": "not_found",
    }


def test_a_wrong_method_is_405(client: httpx.Client) -> None:
    for method, path in [
        ("PUT", "/api/agents"),
        ("POST", "/api/agents/1"),
        ("DELETE", "/api/runs/1"),
        ("POST", "/health"),
    ]:
        response = client.request(method, path)

        assert response.status_code == 405, (method, path)
        assert response.json() == {"detail": "Method Not Allowed", "code": "method_not_allowed"}


def test_malformed_json_is_422_and_stores_nothing(client: httpx.Client) -> None:
    for raw in (b'{"name": "x", "model": ', b"not json", b'{"name": "x",}'):
        response = client.post(
            "/api/agents", content=raw, headers={"content-type": "application/json"}
        )

        assert_error(response, 422, "validation_error", "not valid JSON", case=raw)
    assert client.get("/api/agents").json()["items"] == []


def test_a_body_that_is_not_an_object_is_422(client: httpx.Client) -> None:
    for body in ([{"name": "x"}], "agent", 42, None):
        response = client.post("/api/agents", json=body)

        assert_error(response, 422, "validation_error", case=body)


def test_an_id_out_of_range_is_422_not_a_crash(client: httpx.Client) -> None:
    for path, param in [
        ("/api/agents/2147483648", "agent_id"),
        ("/api/agents/0", "agent_id"),
        ("/api/threads/99999999999999999999", "thread_id"),
        ("/api/threads/2147483648/messages", "thread_id"),
        ("/api/runs/-1", "run_id"),
        ("/api/runs?agent_id=2147483648", "agent_id"),
        ("/api/threads?agent_id=99999999999999999999", "agent_id"),
        ("/api/agents/abc", "agent_id"),
    ]:
        response = client.get(path)

        assert_error(response, 422, "validation_error", f"{param}:", case=path)


def test_every_id_in_every_path_is_bounded(client: httpx.Client) -> None:
    # Every route, every method: a new route with a plain `int` id fails here.
    paths = client.get("/openapi.json").json()["paths"]
    routes = [
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        # Integer ids; a string id (a webhook's public id) has no range to leave.
        if any(
            p["in"] == "path" and p["schema"].get("type") == "integer"
            for p in operation.get("parameters", ())
        )
    ]
    assert ("POST", "/api/agents/{agent_id}/task") in routes
    assert ("POST", "/api/runs/{run_id}/cancel") in routes
    for method, path in routes:
        for value in ("99999999999999999999", "9223372036854775808", "2147483648", "0", "-1"):
            url = re.sub(r"\{\w+\}", value, path)
            param = re.findall(r"\{(\w+)\}", path)[-1]

            response = client.request(method, url)

            assert_error(response, 422, "validation_error", f"{param}:", case=(method, url))


def test_the_largest_id_is_simply_not_found(client: httpx.Client) -> None:
    for method, path in [
        ("GET", "/api/agents/2147483647"),
        ("GET", "/api/threads/2147483647"),
        ("GET", "/api/runs/2147483647"),
        ("POST", "/api/agents/2147483647/task"),
        ("POST", "/api/runs/2147483647/cancel"),
    ]:
        response = client.request(method, path)

        assert_error(response, 404, "not_found", "2147483647 does not exist", case=path)


def test_a_thread_for_an_out_of_range_agent_is_422(client: httpx.Client) -> None:
    response = client.post("/api/threads", json={"agent_id": 2**31})

    assert_error(response, 422, "validation_error", "agent_id:", "less than or equal to")


def test_an_unexpected_exception_is_500_without_internals(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret-token-123 leaked in an exception")

    # Listen on the logger itself: a CLI test may have stopped "zerg" propagating to the root.
    error_log = logging.getLogger("zerg.api.errors")
    error_log.addHandler(caplog.handler)
    try:
        with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
            response = http.get("/boom")
    finally:
        error_log.removeHandler(caplog.handler)

    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal server error; the server log has the details",
        "code": "internal_error",
    }
    assert "secret-token" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    # What the body holds back, the server log has.
    logged = [r for r in caplog.records if r.name == "zerg.api.errors"]
    assert {r.getMessage() for r in logged} == {"unhandled error on GET /boom"}
    assert logged[0].exc_info is not None
    assert "secret-token-123" in str(logged[0].exc_info[1])


def test_the_docs_and_the_openapi_schema_are_served(client: httpx.Client) -> None:
    docs = client.get("/docs")
    schema = client.get("/openapi.json")

    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/agents": {"get", "post"},
        "/api/agents/{agent_id}": {"get", "patch", "delete"},
        "/api/threads": {"get", "post"},
        "/api/threads/{thread_id}": {"get", "patch", "delete"},
        "/api/threads/{thread_id}/messages": {"get", "post"},
        "/api/runs": {"get"},
        "/api/runs/{run_id}": {"get"},
        "/api/runs/{run_id}/events": {"get"},
        "/health": {"get"},
    }.items() <= {path: set(ops) for path, ops in paths.items()}.items()
