"""What every command shares: settings, a database session, JSON output and error mapping."""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import httpx
import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from zerg.db import Database
from zerg.db.migrate import upgrade
from zerg.errors import NotFound, ZergError
from zerg.settings import Settings

EXIT_ERROR = 1
EXIT_NOT_FOUND = 3
EXIT_INVALID = 4
EXIT_RUN_FAILED = 5


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    # Driver messages span lines (libpq adds a tab-indented hint); an error stays one line.
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _describe_setting_error(error: ErrorDetails, options: dict[str, Any]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    source = f"--{field.replace('_', '-')}" if field in options else f"ZERG_{field.upper()}"
    return f"invalid {source}: {error['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the `ZERG_*` variables, overridden by the command options that were given."""
    options = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**options)
    except ValidationError as exc:
        fail("; ".join(_describe_setting_error(error, options) for error in exc.errors()))


def require_postgres(settings: Settings, command: str) -> None:
    """Distributed mode (API replicas and workers) shares one PostgreSQL database."""
    if settings.is_sqlite:
        fail(
            f"`{command}` is distributed mode, which needs PostgreSQL: set "
            "ZERG_DATABASE_URL=postgresql+psycopg://user:password@host/dbname "
            "(or run `zerg serve` alone for embedded mode on SQLite)"
        )


def open_database(settings: Settings) -> Database:
    """The configured database, or one error line saying why its URL cannot be used."""
    try:
        return Database(settings)
    except ArgumentError as exc:
        fail(f"ZERG_DATABASE_URL is not a database URL: {exc}")
    except ImportError as exc:
        fail(
            f"ZERG_DATABASE_URL needs a database driver that is not installed ({exc}); "
            "for PostgreSQL use postgresql+psycopg://user:password@host/dbname"
        )
    except OSError as exc:
        fail(f"cannot create the directory of the SQLite database: {exc}")


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session for one command, with domain and database errors turned into one line."""
    database = open_database(settings)
    try:
        with database.session() as session:
            yield session
    except NotFound as exc:
        fail(exc.detail, EXIT_NOT_FOUND)
    except ZergError as exc:
        fail(exc.detail, EXIT_INVALID)
    # PostgreSQL reports a missing table as a ProgrammingError, SQLite as an OperationalError.
    except (OperationalError, ProgrammingError) as exc:
        fail(
            f"cannot use the database at {database.engine.url!r}: {exc.orig}; "
            "run `zerg db upgrade` or check ZERG_DATABASE_URL"
        )
    finally:
        database.dispose()


def migrate_or_fail(settings: Settings) -> str:
    """Apply pending migrations; returns the database URL (password hidden) for messages."""
    database = open_database(settings)
    url = database.engine.url.render_as_string()
    try:
        upgrade(database.engine)
    except OperationalError as exc:
        fail(f"cannot reach the database at {url}: {exc.orig}; check ZERG_DATABASE_URL")
    finally:
        database.dispose()
    return url


@contextmanager
def migrated_session(settings: Settings) -> Iterator[Session]:
    """`session_scope` on a database brought up to date first: administrative commands such as
    `zerg users create` are often the first thing run against a new Zerg, before `zerg serve`."""
    migrate_or_fail(settings)
    with session_scope(settings) as session:
        yield session


def call_server(settings: Settings, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request to the running server; API errors become the CLI's one-line errors."""
    url = settings.resolved_server_url
    if settings.token is not None:
        kwargs["headers"] = {
            **kwargs.get("headers", {}),
            "Authorization": f"Bearer {settings.token.get_secret_value()}",
        }
    try:
        response = httpx.request(method, f"{url}{path}", **kwargs)
    except httpx.TransportError as exc:
        fail(
            f"cannot reach Zerg at {url} ({type(exc).__name__}); start it with `zerg serve` "
            "or point ZERG_SERVER_URL at it"
        )
    if response.status_code >= 400:
        try:
            body = response.json()
            detail, code = body["detail"], body["code"]
        except (ValueError, KeyError, TypeError):
            detail, code = response.text[:200], "http_error"
        exit_code = {404: EXIT_NOT_FOUND, 422: EXIT_INVALID}.get(response.status_code, EXIT_ERROR)
        fail(f"{detail} ({code})", exit_code)
    return response


def emit_json(data: BaseModel | Sequence[BaseModel]) -> None:
    payload = (
        data.model_dump(mode="json")
        if isinstance(data, BaseModel)
        else [item.model_dump(mode="json") for item in data]
    )
    typer.echo(json.dumps(payload, indent=2))
