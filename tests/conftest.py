"""Fixtures shared by the whole suite.

Every test that touches the database runs once per backend (SQLite, and PostgreSQL on a server
this session starts), each time on a fresh database copied from a migrated template.
"""

import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from tests.api.helpers import T0, FrozenClock
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.processes import ZergProcess
from tests.support.server import serve_in_thread
from zerg import clock as zerg_clock
from zerg.api.app import create_app
from zerg.db import Database
from zerg.db.engine import create_db_engine
from zerg.db.migrate import upgrade
from zerg.engine import RunEngine, engine_database_url
from zerg.settings import Settings

if TYPE_CHECKING:  # imported by pytest as a plugin (below), not here
    from tests.support.openai_server import FakeOpenAI

BACKENDS = [b for b in os.environ.get("ZERG_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
_counter = itertools.count()


def _refuse_network(self: socket.socket, address: object) -> None:
    """No test may reach past this machine: connecting anywhere but loopback fails loudly."""
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host in ("localhost", "::1") or host.startswith("127.") or host.startswith("/")
    ):
        return _original_connect(self, address)
    raise RuntimeError(f"tests must not reach the network (tried to connect to {address!r})")


_original_connect = socket.socket.connect


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    socket.socket.connect = _refuse_network  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect = _original_connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="zerg-test-pg-"))
    server = start_postgres(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def template_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A database migrated to head once per session; each test copies it."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        admin = create_engine(server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE zerg_template"))
        admin.dispose()
        url = server.url_for("zerg_template")
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    # The run engine's own tables too, so that each test's server starts without creating them.
    run_engine = RunEngine(Settings(database_url=url), _never_called)
    run_engine.launch()
    run_engine.shutdown()
    return url


async def _never_called(run_id: int, workflow_id: str | None) -> None:
    raise AssertionError(f"the template database ran run {run_id}")


@pytest.fixture
def database_url(
    backend: str, template_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if backend == "sqlite":
        target = tmp_path / "zerg.db"
        template = Path(template_url.removeprefix("sqlite:///"))
        shutil.copyfile(template, target)
        template_engine_db = Path(
            engine_database_url(Settings(database_url=template_url)).removeprefix("sqlite:///")
        )
        target_url = f"sqlite:///{target}"
        shutil.copyfile(
            template_engine_db,
            engine_database_url(Settings(database_url=target_url)).removeprefix("sqlite:///"),
        )
        yield target_url
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"zerg_test_{os.getpid()}_{next(_counter)}"
    with server.database(name, template="zerg_template") as url:
        yield url


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A new database with no tables (nothing migrated), on each backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty' / 'zerg.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    with server.database(f"zerg_empty_{os.getpid()}_{next(_counter)}") as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    # Agents reach the fake OpenAI server through their config.base_url, which Zerg accepts
    # only when it is listed: a test that uses the server lists it, as an operator would.
    model_base_urls = ""
    if "openai_server" in request.fixturenames:
        model_base_urls = f"{request.getfixturevalue('openai_server').base_url}/v1"
    return Settings(
        database_url=database_url, data_dir=tmp_path / "data", model_base_urls=model_base_urls
    )


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings)
    yield db
    db.dispose()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield http


# The `openai_server` fixture (a fake OpenAI-compatible LLM server) for the whole suite.
pytest_plugins = ["tests.support.openai_server"]


@pytest.fixture
def zerg(database_url: str, tmp_path: Path, openai_server: "FakeOpenAI") -> Iterator[ZergProcess]:
    """A real `zerg serve` process on the test's database, for kill -9 and restart tests."""
    env = {
        "ZERG_DATABASE_URL": database_url,
        "ZERG_DATA_DIR": str(tmp_path / "data"),
        # The agents' config.base_url: the fake OpenAI server, listed as an operator would.
        "ZERG_MODEL_BASE_URLS": f"{openai_server.base_url}/v1",
    }
    process = ZergProcess(env, tmp_path / "zerg.log")
    yield process
    process.stop()


@pytest.fixture
def clock() -> Iterator[FrozenClock]:
    """Zerg's clock, frozen at T0 (advance it with `clock.advance`)."""
    frozen = FrozenClock(T0)
    zerg_clock.set_clock(frozen)
    try:
        yield frozen
    finally:
        zerg_clock.set_clock(None)
