"""Engine and session factory for SQLite (embedded) and PostgreSQL (distributed)."""

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from zerg.settings import Settings

# Copy the WAL back into the database every 10,000 pages (~40 MB) rather than SQLite's 1,000:
# a run rewrites the same hot pages (indexes, the newest rows), so fewer, larger checkpoints
# copy each of them once; the task-run benchmark's p95 fell from ~13 to ~11 ms.
WAL_AUTOCHECKPOINT_PAGES = 10_000


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
    return create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)


class Database:
    """One engine and its session factory, owned by an entry point (server, worker, CLI)."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_database_url
        self.engine = create_db_engine(
            self.url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

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

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
