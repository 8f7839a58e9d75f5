"""What every command shares: settings, a database session, JSON output and error mapping."""

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session

from zerg.db import Database
from zerg.db.migrate import upgrade
from zerg.errors import NotFound, ZergError
from zerg.settings import Settings

EXIT_ERROR = 1
EXIT_NOT_FOUND = 3
EXIT_INVALID = 4


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        fail(f"invalid setting: {describe_validation_error(exc)} (check your ZERG_* variables)")


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session for one command, with domain and database errors turned into one line."""
    database = Database(settings)
    try:
        with database.session() as session:
            yield session
    except NotFound as exc:
        fail(exc.detail, EXIT_NOT_FOUND)
    except ZergError as exc:
        fail(exc.detail, EXIT_INVALID)
    except OperationalError as exc:
        fail(
            f"cannot use the database at {database.engine.url!r}: {exc.orig}; "
            "run `zerg db upgrade` or check ZERG_DATABASE_URL"
        )
    finally:
        database.dispose()


def migrate_or_fail(settings: Settings) -> str:
    """Apply pending migrations; returns the database URL (password hidden) for messages."""
    try:
        database = Database(settings)
    except ArgumentError as exc:
        fail(f"ZERG_DATABASE_URL is not a database URL: {exc}")
    url = database.engine.url.render_as_string()
    try:
        upgrade(database.engine)
    except OperationalError as exc:
        fail(f"cannot reach the database at {url}: {exc.orig}; check ZERG_DATABASE_URL")
    finally:
        database.dispose()
    return url


def emit_json(data: BaseModel | Sequence[BaseModel]) -> None:
    payload = (
        data.model_dump(mode="json")
        if isinstance(data, BaseModel)
        else [item.model_dump(mode="json") for item in data]
    )
    typer.echo(json.dumps(payload, indent=2))
