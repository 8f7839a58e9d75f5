"""`zerg serve`: bad settings fail before serving; a real process serves the API on SQLite."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect, text

from tests.cli.runner import Cli, error_line
from tests.support.postgres import free_port
from zerg.cli import serve as serve_cli
from zerg.db.engine import create_db_engine
from zerg.db.migrate import heads
from zerg.models import Base


@pytest.mark.parametrize("port", ["http", "70000", "-1", ""])
def test_an_invalid_zerg_port_is_one_error_line(bare_cli: Cli, port: str) -> None:
    line = error_line(bare_cli("serve", ZERG_PORT=port), 1)

    assert line.startswith("error: invalid ZERG_PORT: ")


def test_an_invalid_port_option_names_the_option(bare_cli: Cli) -> None:
    line = error_line(bare_cli("serve", "--port", "70000"), 1)

    assert line == "error: invalid --port: Input should be less than or equal to 65535"


def test_the_port_option_wins_over_a_bad_zerg_port(bare_cli: Cli) -> None:
    # Both invalid, so nothing starts; the error is about the option, which is what is used.
    line = error_line(bare_cli("serve", "--port", "70000", ZERG_PORT="http"), 1)

    assert "--port" in line
    assert "ZERG_PORT" not in line


def test_a_bad_database_url_stops_serve_before_it_listens(bare_cli: Cli) -> None:
    line = error_line(bare_cli("serve", ZERG_DATABASE_URL="not a url"), 1)

    assert line.startswith("error: ZERG_DATABASE_URL is not a database URL")


# One real `zerg serve` process, as a user starts it: only ZERG_DATA_DIR set.


def zerg_command() -> list[str]:
    """The `zerg` entry point of the Python running the tests, or the module behind it."""
    beside_python = Path(sys.executable).parent / "zerg"
    if beside_python.is_file():
        return [str(beside_python)]
    on_path = shutil.which("zerg")
    if on_path:
        return [on_path]
    return [sys.executable, "-c", "from zerg.cli import main; main()"]


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path


def wait_until_healthy(server: ServerProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"zerg serve exited early:\n{server.stderr.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"zerg serve did not answer within {timeout}s:\n{server.stderr.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def zerg_serve(tmp_path: Path, data_dir: Path) -> Iterator[ServerProcess]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ZERG_")}
    env |= {"ZERG_DATA_DIR": str(data_dir), "HOME": str(tmp_path / "home")}
    port = free_port()
    stdout, stderr = tmp_path / "serve.stdout", tmp_path / "serve.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [*zerg_command(), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=err,
            cwd=tmp_path,
        )
    server = ServerProcess(process, f"http://127.0.0.1:{port}", stdout, stderr)
    try:
        yield server
    finally:
        if process.poll() is None:
            stop(process)


def test_serve_creates_the_database_and_serves_the_api(
    zerg_serve: ServerProcess, data_dir: Path
) -> None:
    assert not data_dir.exists()

    wait_until_healthy(zerg_serve)

    database = data_dir / "zerg.db"
    assert database.is_file()
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        assert set(inspect(engine).get_table_names()) == {*Base.metadata.tables, "alembic_version"}
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == heads()[0]
            )
    finally:
        engine.dispose()

    with httpx.Client(base_url=zerg_serve.url, timeout=10) as http:
        assert http.get("/health").json() == {"status": "ok", "database": "ok"}
        created = http.post(
            "/api/agents",
            json={"name": "Digest", "model": "openai:gpt-4o-mini", "tools": ["http_get"]},
        )
        assert created.status_code == 201, created.text
        agent = created.json()
        assert http.get(f"/api/agents/{agent['id']}").json() == agent
        assert http.get("/api/agents").json() == {"items": [agent], "next_cursor": None}

    code = stop(zerg_serve.process)

    # uvicorn shuts down gracefully, then re-raises SIGTERM so a supervisor sees why it ended.
    assert code in (0, -signal.SIGTERM)
    logs = zerg_serve.stderr.read_text()
    assert "database ready at sqlite:///" in logs
    assert "Application shutdown complete" in logs
    assert "Traceback" not in logs
    # Logs, access lines included, go to stderr (JSON lines, as it is no terminal): stdout is
    # for data only.
    lines = [json.loads(line) for line in logs.splitlines()]
    assert {"path": "/health", "status": 200} in [
        {"path": line.get("path"), "status": line.get("status")} for line in lines
    ]
    assert zerg_serve.stdout.read_text() == ""


# A Zerg without users trusts every request: it listens beyond loopback only once it has users,
# or when the operator says --insecure-no-auth.


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """`zerg serve` in-process with uvicorn replaced: the keyword arguments of each `run`, and
    no socket bound. The loggers it configures (`zerg`, `dbos`, the root) are put back
    afterwards."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(serve_cli.uvicorn, "run", lambda app, **options: calls.append(options))
    loggers = [logging.getLogger(name) for name in ("zerg", "dbos", None)]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield calls
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "zerg.example.com"])
def test_serve_refuses_an_open_host_without_users(
    bare_cli: Cli, uvicorn_runs: list[dict[str, Any]], host: str
) -> None:
    line = error_line(bare_cli("serve", "--host", host), 1)

    assert uvicorn_runs == []
    assert line.startswith(f"error: refusing to listen on {host}: this Zerg has no users")
    assert "`zerg users create NAME --admin`" in line
    assert "`Authorization: Bearer <token>`" in line
    assert "--insecure-no-auth" in line


def test_serve_refuses_an_open_zerg_host_too(
    bare_cli: Cli, uvicorn_runs: list[dict[str, Any]]
) -> None:
    line = error_line(bare_cli("serve", ZERG_HOST="0.0.0.0"), 1)

    assert line.startswith("error: refusing to listen on 0.0.0.0")
    assert uvicorn_runs == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_serve_listens_on_loopback_without_users(
    bare_cli: Cli, uvicorn_runs: list[dict[str, Any]], host: str
) -> None:
    result = bare_cli("serve", "--host", host)

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert [run["host"] for run in uvicorn_runs] == [host]
    assert "WARNING" not in result.stderr


def test_serve_listens_openly_with_insecure_no_auth_and_says_so(
    bare_cli: Cli, uvicorn_runs: list[dict[str, Any]]
) -> None:
    result = bare_cli(
        "serve", "--host", "0.0.0.0", "--port", "8123", "--insecure-no-auth", ZERG_LOG_FORMAT="text"
    )

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert [run["host"] for run in uvicorn_runs] == ["0.0.0.0"]
    warnings = [line for line in result.stderr.splitlines() if " WARNING " in line]
    assert len(warnings) == 1
    assert "no authentication" in warnings[0]
    assert "everyone who can reach port 8123 owns this Zerg" in warnings[0]


def test_serve_listens_openly_once_a_user_exists(
    cli: Cli, uvicorn_runs: list[dict[str, Any]]
) -> None:
    assert cli("users", "create", "alice", "--admin").exit_code == 0

    result = cli("serve", "--host", "0.0.0.0")

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert [run["host"] for run in uvicorn_runs] == ["0.0.0.0"]
    assert "WARNING" not in result.stderr


def test_serve_listens_openly_when_auth_is_required(
    bare_cli: Cli, uvicorn_runs: list[dict[str, Any]]
) -> None:
    result = bare_cli("serve", "--host", "0.0.0.0", ZERG_AUTH="required")

    assert result.exit_code == 0, (result.stderr, result.exception)
    assert [run["host"] for run in uvicorn_runs] == ["0.0.0.0"]


def test_uvicorn_does_not_log_an_error_for_each_refused_websocket_handshake() -> None:
    """The hub refuses a handshake with an HTTP answer on purpose (401, 403, 421); uvicorn
    logs each as an error, which anyone could use to fill the log."""
    config = serve_cli._uvicorn_log_config()
    [name] = config["loggers"]["uvicorn.error"]["filters"]
    only = config["filters"][name]["()"]()
    logger = logging.getLogger("test-uvicorn-error")
    logger.addFilter(only)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.propagate = False
    logger.error("ASGI callable returned without completing handshake.")
    logger.error("Exception in ASGI application")
    assert seen == ["Exception in ASGI application"]
