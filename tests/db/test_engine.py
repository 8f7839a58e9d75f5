"""SQLite connection tuning, the UTC column type on both backends, and the settings."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select, text
from sqlalchemy.exc import StatementError

from zerg.db import Database
from zerg.db.engine import create_db_engine
from zerg.db.types import UTCDateTime
from zerg.settings import Settings

# --- SQLite connections ---


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    database = Database(Settings(data_dir=tmp_path / "data", sqlite_busy_timeout_ms=1234))
    yield database
    database.dispose()


def pragma(engine: Engine, name: str, *, connections: int = 1) -> list[object]:
    """PRAGMA `name` as seen by `connections` connections open at once."""
    opened = [engine.connect() for _ in range(connections)]
    try:
        return [conn.exec_driver_sql(f"PRAGMA {name}").scalar() for conn in opened]
    finally:
        for conn in opened:
            conn.close()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("journal_mode", "wal"), ("synchronous", 1), ("foreign_keys", 1), ("busy_timeout", 1234)],
)
def test_every_sqlite_connection_is_tuned(
    sqlite_database: Database, name: str, expected: object
) -> None:
    # Per-connection settings: check two connections open side by side, not just the first.
    assert pragma(sqlite_database.engine, name, connections=2) == [expected, expected]


def test_busy_timeout_defaults_to_five_seconds(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'zerg.db'}")
    try:
        assert pragma(engine, "busy_timeout") == [5000]
    finally:
        engine.dispose()


def test_sqlite_enforces_foreign_keys(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE child (parent_id INTEGER REFERENCES parent (id))")
        with pytest.raises(StatementError, match="FOREIGN KEY constraint failed"):
            conn.exec_driver_sql("INSERT INTO child VALUES (42)")


def test_the_sqlite_file_and_its_directory_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "zerg.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()

    assert path.is_file()


def test_ping_answers(database: Database) -> None:
    database.ping()


# --- PostgreSQL connections ---


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    database_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled connection the server ended (a restart, a dropped link) while it sat idle is
    checked, found dead and replaced: the next transaction succeeds."""
    if backend != "postgresql":
        pytest.skip(reason="a PostgreSQL server ends connections; a SQLite file has none")
    monkeypatch.setattr("zerg.db.engine.IDLE_PING_S", 0.0)
    engine = create_db_engine(database_url)
    admin = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()


def test_zergs_connections_are_named_unless_the_url_names_them(
    database_url: str, backend: str
) -> None:
    """An operator tells Zerg's connections apart in pg_stat_activity."""
    if backend != "postgresql":
        pytest.skip(reason="application_name is PostgreSQL's")
    for url, name in ((database_url, "zerg"), (f"{database_url}?application_name=api-7", "api-7")):
        engine = create_db_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW application_name").scalar() == name
        finally:
            engine.dispose()


def test_a_busy_connection_is_not_checked_before_each_use(database_url: str, backend: str) -> None:
    """Checking every checkout costs the server a round trip and a commit per transaction: a
    connection back from recent use goes straight to work."""
    if backend != "postgresql":
        pytest.skip(reason="the check is PostgreSQL's pool's")
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        pings: list[object] = []
        real_ping = engine.dialect.do_ping
        engine.dialect.do_ping = lambda c: pings.append(c) or real_ping(c)  # type: ignore[method-assign]
        for _ in range(3):
            with engine.begin() as conn:
                assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == pid
        assert pings == []
    finally:
        engine.dispose()


def test_a_read_on_postgresql_is_no_transaction(database: Database, backend: str) -> None:
    """`read` saves PostgreSQL the BEGIN and COMMIT round trips: the server reports no open
    transaction after its statement, where `transaction` holds one open."""
    if backend != "postgresql":
        pytest.skip(reason="SQLite's driver opens no transaction for a read either way")
    with database.read() as conn:
        conn.exec_driver_sql("SELECT 1").scalar()
        assert conn.connection.driver_connection.info.transaction_status.name == "IDLE"
    with database.transaction() as conn:
        conn.exec_driver_sql("SELECT 1").scalar()
        assert conn.connection.driver_connection.info.transaction_status.name == "INTRANS"


def test_the_connection_of_a_read_is_transactional_again_afterwards(
    database: Database, backend: str
) -> None:
    """A read leaves its pooled connection as it found it: a transaction on it afterwards
    still rolls back whole."""
    with database.transaction() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (n INTEGER)")
    with database.read() as conn:
        first = conn.connection.driver_connection
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 0
    with pytest.raises(RuntimeError, match="undo"), database.transaction() as conn:
        assert conn.connection.driver_connection is first  # the same pooled connection
        conn.exec_driver_sql("INSERT INTO scratch VALUES (1)")
        raise RuntimeError("undo")
    with database.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scratch").scalar() == 0


# --- UTCDateTime, on both backends ---

metadata = MetaData()
events = Table(
    "utc_datetime_test",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime),
)


@pytest.fixture
def engine(database: Database) -> Iterator[Engine]:
    metadata.create_all(database.engine)
    yield database.engine


def store_and_load(engine: Engine, value: datetime | None) -> datetime | None:
    with engine.begin() as conn:
        key = conn.execute(insert(events).values(at=value)).inserted_primary_key
    assert key is not None
    with engine.connect() as conn:
        loaded: datetime | None = conn.execute(
            select(events.c.at).where(events.c.id == key[0])
        ).scalar_one()
        return loaded


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-8))),
    ],
    ids=["utc", "east-of-utc", "west-of-utc"],
)
def test_utc_datetime_round_trips_as_aware_utc(engine: Engine, value: datetime) -> None:
    loaded = store_and_load(engine, value)

    assert loaded == value
    assert loaded is not None
    assert loaded.tzinfo is UTC
    assert loaded.microsecond == value.microsecond


def test_utc_datetime_stores_null(engine: Engine) -> None:
    assert store_and_load(engine, None) is None


def test_utc_datetime_refuses_naive_datetimes(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(StatementError, match="naive datetime"):
        conn.execute(insert(events).values(at=datetime(2026, 1, 1, 12, 0)))


def test_utc_datetime_compares_instants_not_wall_clocks(engine: Engine) -> None:
    noon_utc = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    store_and_load(engine, noon_utc)
    # 13:30 in Paris (UTC+2 in June) is 11:30 UTC: before noon UTC, though its wall clock is later.
    paris = timezone(timedelta(hours=2))

    with engine.connect() as conn:
        after = conn.execute(
            select(events.c.at).where(events.c.at > datetime(2026, 6, 1, 13, 30, tzinfo=paris))
        ).scalars()
        assert list(after) == [noon_utc]


def test_utc_datetime_ignores_the_session_time_zone(engine: Engine, backend: str) -> None:
    value = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    store_and_load(engine, value)

    with engine.connect() as conn:
        if backend == "postgresql":
            conn.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        loaded = conn.execute(select(events.c.at)).scalar_one()

    assert loaded == value
    assert loaded.tzinfo is UTC


# --- Settings ---


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No ZERG_* variable from the machine running the tests, and a home of our own."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"ZERG_{name.upper()}", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_settings_read_zerg_variables(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("ZERG_DATA_DIR", str(tmp_path / "state"))
    clean_env.setenv("ZERG_DATABASE_URL", "postgresql+psycopg://zerg@db.internal/zerg")
    clean_env.setenv("ZERG_HOST", "0.0.0.0")
    clean_env.setenv("ZERG_PORT", "9000")
    clean_env.setenv("ZERG_LOG_LEVEL", "debug")
    clean_env.setenv("ZERG_SQLITE_BUSY_TIMEOUT_MS", "250")

    settings = Settings()

    assert settings.data_dir == tmp_path / "state"
    assert settings.resolved_database_url == "postgresql+psycopg://zerg@db.internal/zerg"
    assert not settings.is_sqlite
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    assert settings.log_level == "debug"
    assert settings.sqlite_busy_timeout_ms == 250


def test_settings_ignore_unprefixed_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PORT", "9000")
    clean_env.setenv("DATABASE_URL", "postgresql+psycopg://zerg@db.internal/zerg")

    settings = Settings()

    assert settings.port == 8000
    assert settings.database_url is None


def test_settings_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings()

    assert settings.data_dir == tmp_path / "home" / ".zerg"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'home' / '.zerg' / 'zerg.db'}"
    assert settings.is_sqlite
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8000, "info")
    assert settings.sqlite_busy_timeout_ms == 5000


def test_the_default_database_is_a_sqlite_file_in_the_data_dir(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("ZERG_DATA_DIR", str(tmp_path / "state"))
    database = Database(Settings())
    try:
        database.ping()
    finally:
        database.dispose()

    assert (tmp_path / "state" / "zerg.db").is_file()


def test_an_empty_database_url_means_the_default(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("ZERG_DATA_DIR", str(tmp_path / "state"))
    clean_env.setenv("ZERG_DATABASE_URL", "")

    assert Settings().resolved_database_url == f"sqlite:///{tmp_path / 'state' / 'zerg.db'}"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ZERG_PORT", "http"),
        ("ZERG_PORT", "65536"),
        ("ZERG_LOG_LEVEL", "loud"),
        ("ZERG_SQLITE_BUSY_TIMEOUT_MS", "-1"),
    ],
)
def test_settings_reject_invalid_values(
    clean_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    clean_env.setenv(variable, value)

    with pytest.raises(ValidationError, match=variable.removeprefix("ZERG_").lower()):
        Settings()
