"""Engine and session factory for SQLite (embedded) and PostgreSQL (distributed)."""

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from zerg.settings import Settings

# Copy the WAL back into the database every 10,000 pages (~40 MB) rather than SQLite's 1,000:
# a run rewrites the same hot pages (indexes, the newest rows), so fewer, larger checkpoints
# copy each of them once; the task-run benchmark's p95 fell from ~13 to ~11 ms.
WAL_AUTOCHECKPOINT_PAGES = 10_000
# A PostgreSQL connection that sat in the pool this long is checked before it is used again.
IDLE_PING_S = 10.0


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite file `path` readable by its owner only (0600), in a directory created
    0700, before SQLite opens it: the database holds secrets (webhook and notification signing
    secrets) and what runs read and wrote. SQLite gives its -wal and -shm files the database
    file's permissions.

    An existing directory or file keeps its permissions: it may be shared on purpose.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL lets readers run beside the writer; NORMAL is durable across app crashes in WAL mode.

    `synchronous`, `foreign_keys` and `busy_timeout` are per connection, so set them on each.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()


def create_db_engine(url: str, *, sqlite_busy_timeout_ms: int = 5000) -> Engine:
    """An engine for `url`; a missing SQLite file and directory are created private."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            # SQLite does not expand "~" (e.g. ZERG_DATA_DIR=~/zerg): expand it here, so the
            # file opened is in the directory created.
            path = Path(database).expanduser()
            private_sqlite_file(path)
            parsed = parsed.set(database=str(path))
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False}, pool_size=20, max_overflow=20
        )
        _configure_sqlite(engine, sqlite_busy_timeout_ms)
        return engine
    # Named in pg_stat_activity, unless the URL names it already.
    connect_args = {} if "application_name" in parsed.query else {"application_name": "zerg"}
    engine = create_engine(url, pool_size=20, max_overflow=20, connect_args=connect_args)
    _ping_when_idle(engine, IDLE_PING_S)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Check a pooled connection before use when it sat idle for `idle_s` or more (a restarted
    server or a dropped link left it dead), and replace it if it fails.

    Not on every checkout, as SQLAlchemy's `pool_pre_ping` does: that is a round trip and a
    commit on the server for each of a run's transactions. A connection that breaks while in
    busy use fails that use, and SQLAlchemy then replaces every connection of the pool.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool connects anew and tries again
            raise DisconnectionError(f"a pooled connection failed its check: {exc}") from exc


class Database:
    """One engine and its session factory, owned by an entry point (server, worker, CLI)."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_database_url
        self.engine = create_db_engine(
            self.url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        # PostgreSQL reads outside a transaction (`read`). SQLite's driver opens none for a
        # read anyway, and switching it to autocommit and back costs a PRAGMA each time.
        self._reader = self.engine
        if self.engine.dialect.name == "postgresql":
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that rolls back whatever its user did not commit."""
        with self.sessionmaker() as session:
            yield session

    def transaction(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed when the block ends (rolled back on error).

        The run path writes through SQLAlchemy Core here rather than a `Session`: a run writes
        about a dozen rows, and the ORM's unit of work measured three times the cost.
        """
        return self.engine.begin()

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for a read that needs no transaction: one statement, or several
        that need not see the same snapshot.

        On PostgreSQL each statement commits on its own: one round trip where a transaction
        takes three (BEGIN, the statement, COMMIT). The pool returns the connection to
        transactions once the block ends. Write nothing here: each statement would commit.
        """
        return self._reader.connect()

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
