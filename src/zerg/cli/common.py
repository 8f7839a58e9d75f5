"""What every command shares: settings, a database session, the server and its token, JSON
output and error mapping."""

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

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

M = TypeVar("M", bound=BaseModel)
# API error codes that say no more than the exit code: the error line leaves them out.
_SAID_BY_EXIT_CODE = {"not_found", "validation_error", "invalid_input"}
# A token travels in an HTTP header: visible ASCII only, so a stray newline or a pasted
# non-token can neither break the request nor be quoted back by the HTTP library's errors.
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


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


@dataclass(frozen=True)
class Credential:
    """An API token and, for messages, where it came from; messages never show the token."""

    token: str = field(repr=False)
    source: str
    fix: str  # what to do when the server refuses it


def token_file() -> Path:
    """Where `zerg login` keeps the token: $XDG_CONFIG_HOME/zerg/token, else
    ~/.config/zerg/token."""
    # The XDG base directory convention, not a Zerg setting; it says to ignore a relative value.
    config_home = Path(os.environ.get("XDG_CONFIG_HOME", ""))
    base = config_home if config_home.is_absolute() else Path.home() / ".config"
    return base / "zerg" / "token"


def is_token_shaped(text: str) -> bool:
    return _TOKEN_CHARS.fullmatch(text) is not None


def token_in_force(settings: Settings) -> Credential | None:
    """ZERG_TOKEN if set, else the token `zerg login` stored, else none (local mode needs none)."""
    if settings.token is not None and settings.token.get_secret_value():
        return _usable(
            Credential(
                settings.token.get_secret_value(),
                source="ZERG_TOKEN",
                fix="set ZERG_TOKEN to a valid token, or unset it and run `zerg login`",
            )
        )
    path = token_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not text"
        fail(
            f"cannot read the API token stored by `zerg login` in {path}: {reason}; "
            "run `zerg login` again, or set ZERG_TOKEN"
        )
    return _usable(
        Credential(
            text.strip(),
            source=f"{path} (`zerg login`)",
            fix="run `zerg login` again with a valid token, or set ZERG_TOKEN",
        )
    )


def _usable(credential: Credential) -> Credential:
    if not is_token_shaped(credential.token):
        fail(
            f"{credential.source} does not hold an API token (one line of visible ASCII "
            f"characters, zerg_...); {credential.fix}"
        )
    return credential


def call_server(
    settings: Settings,
    method: str,
    path: str,
    *,
    credential: Credential | None = None,
    about: str | None = None,
    raise_unreachable: bool = False,
    **kwargs: Any,
) -> httpx.Response:
    """A request to the running server, with `credential` or else the token in force; API errors
    become the CLI's one-line errors, starting with `about` when given (e.g. "agent 'calc'").
    With `raise_unreachable`, a lost connection is raised (httpx.TransportError) for the caller
    to retry."""
    url = settings.resolved_server_url
    credential = credential or token_in_force(settings)
    kwargs["headers"] = {**kwargs.get("headers", {}), **auth_headers(credential)}
    try:
        response = httpx.request(method, f"{url}{path}", **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        fail(
            f"the server URL {url!r} is not an http:// or https:// URL; "
            "set ZERG_SERVER_URL to one, e.g. http://127.0.0.1:8000"
        )
    except httpx.TransportError as exc:
        if raise_unreachable:
            raise
        fail(
            f"cannot reach Zerg at {url} ({type(exc).__name__}); start it with `zerg serve` "
            "or point ZERG_SERVER_URL at it"
        )
    if response.status_code >= 400:
        _refused(response, url, credential, about)
    return response


def auth_headers(credential: Credential | None) -> dict[str, str]:
    return {} if credential is None else {"Authorization": f"Bearer {credential.token}"}


def _refused(
    response: httpx.Response, url: str, credential: Credential | None, about: str | None = None
) -> NoReturn:
    try:
        body = response.json()
        detail, code = str(body["detail"]), str(body["code"])
    except (ValueError, KeyError, TypeError):
        detail, code = response.text[:200], "http_error"
    if credential is not None:
        detail = detail.replace(credential.token, "zerg_...")
    if response.status_code == 401 and credential is None:
        fail(
            f"Zerg at {url} has users, so it needs an API token ({code}): run `zerg login`, "
            "or set ZERG_TOKEN (an admin makes tokens with `zerg tokens create`)"
        )
    if response.status_code == 401 and credential is not None:
        fail(
            f"Zerg at {url} refused the API token from {credential.source}: {detail} ({code}); "
            f"{credential.fix}"
        )
    if response.status_code == 421:
        port = httpx.URL(url).port or 8000
        fail(
            f"Zerg at {url} has no users, so it answers loopback names only ({code}): on its "
            f"machine set ZERG_SERVER_URL=http://127.0.0.1:{port}, or create a user there "
            "(`zerg users create NAME --admin`) and use their token"
        )
    exit_code = {404: EXIT_NOT_FOUND, 422: EXIT_INVALID}.get(response.status_code, EXIT_ERROR)
    line = detail if code in _SAID_BY_EXIT_CODE else f"{detail} ({code})"
    fail(f"{about}: {line}" if about else line, exit_code)


def server_json(settings: Settings, method: str, path: str, **kwargs: Any) -> Any:
    """`call_server`, and the JSON of its answer."""
    response = call_server(settings, method, path, **kwargs)
    try:
        return response.json()
    except ValueError:
        fail(
            f"{settings.resolved_server_url} answered {method} {path} with something that is "
            "not JSON: is ZERG_SERVER_URL the address of a Zerg server?"
        )


def all_pages(settings: Settings, path: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every item of a paged list, following `next_cursor`."""
    items: list[Any] = []
    query: dict[str, Any] = {**(params or {}), "limit": 200}
    while True:
        page = server_json(settings, "GET", path, params=query)
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            fail(
                f"the server's answer to GET {path} is not a page of items: is ZERG_SERVER_URL "
                "a Zerg of the same version?"
            )
        items.extend(page["items"])
        if not page.get("next_cursor"):
            return items
        query["after"] = page["next_cursor"]


def parse_answer(model: type[M], data: Any) -> M:
    """The server's JSON as `model`, or one line saying it is not that shape."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fail(
            f"the server's answer is not the expected {model.__name__} "
            f"({describe_validation_error(exc)}): "
            "is ZERG_SERVER_URL a Zerg of the same version?"
        )


def _jsonable(value: object) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def emit_json(data: Any) -> None:
    """Print models, lists of models, or JSON as the server sent it."""
    typer.echo(json.dumps(data, indent=2, default=_jsonable))
