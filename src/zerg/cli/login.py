"""`zerg login` and `zerg logout`: the API token that `zerg` commands send, kept in a file of
the user's config directory (ZERG_TOKEN, when set, wins over it)."""

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel

from zerg.cli.common import (
    EXIT_INVALID,
    Credential,
    fail,
    is_token_shaped,
    load_settings,
    parse_answer,
    server_json,
    token_file,
)
from zerg.services.users import TOKEN_PREFIX

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="URL of the Zerg to log in to; default ZERG_SERVER_URL, else http://HOST:PORT.",
        show_default=False,
    ),
]


class Me(BaseModel):
    """Who the server says a token stands for (GET /api/me)."""

    name: str
    is_admin: bool
    mode: Literal["local", "token"]


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _read_token() -> str:
    """The token, asked without echo in a terminal, else one line of stdin. Never an argument,
    which shell history and `ps` would keep."""
    if _stdin_is_terminal():
        token: str = typer.prompt("API token", hide_input=True, err=True)
    else:
        token = sys.stdin.read().removesuffix("\n").removesuffix("\r")
        if "\n" in token or "\r" in token:
            fail("the API token on stdin must be one line", EXIT_INVALID)
    token = token.strip()
    if not token:
        fail(
            "no API token on stdin: pipe it in on one line, or run `zerg login` in a terminal "
            "to be asked",
            EXIT_INVALID,
        )
    # Checked before any request, so a password pasted by mistake never leaves this machine.
    if not token.startswith(TOKEN_PREFIX) or not is_token_shaped(token):
        fail(
            f"that is not an API token: one starts with {TOKEN_PREFIX} and has no spaces "
            "(an admin makes one with `zerg tokens create`); nothing was stored",
            EXIT_INVALID,
        )
    return token


def _store(token: str) -> Path:
    """Write the token to its file, 0600 in a 0700 directory, replacing any older one at once:
    a reader sees the old file or the new one, never a partial one."""
    path = token_file()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        # mkstemp creates the file 0600 before anything is written to it.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".token-")
        temp = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(f"{token}\n")
                file.flush()
                os.fsync(file.fileno())
            temp.replace(path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        fail(f"cannot store the API token in {path}: {exc.strerror or type(exc).__name__}")
    return path


def login(server: ServerOpt = None) -> None:
    """Keep an API token for the commands that talk to the server.

    Asked in a terminal (not shown), else read from one line of stdin; never an argument.
    The server checks it; then it is kept, 0600, in $XDG_CONFIG_HOME/zerg/token
    (default ~/.config/zerg/token). ZERG_TOKEN, when set, wins over it.
    """
    settings = load_settings(server_url=server)
    url = settings.resolved_server_url
    token = _read_token()
    typed = Credential(
        token,
        source="your input",
        fix="check it, or ask an admin for a new one (`zerg tokens create`); nothing was stored",
    )
    me = parse_answer(Me, server_json(settings, "GET", "/api/me", credential=typed))
    if me.mode == "local":
        fail(f"Zerg at {url} has no users (local mode), so it takes no token; nothing was stored")
    path = _store(token)
    role = " (admin)" if me.is_admin else ""
    typer.echo(f"logged in to {url} as {me.name!r}{role}; the token is kept in {path}", err=True)
    default = load_settings()
    if server is not None and default.resolved_server_url != url:
        typer.echo(
            f"other commands talk to {default.resolved_server_url}: set ZERG_SERVER_URL={url} "
            "to use this server",
            err=True,
        )
    if settings.token is not None and settings.token.get_secret_value():
        typer.echo("ZERG_TOKEN is set, and commands send it instead until it is unset", err=True)


def logout() -> None:
    """Forget the token `zerg login` kept.

    The token stays valid on the server until an admin revokes it (`zerg tokens revoke`).
    """
    settings = load_settings()
    path = token_file()
    try:
        path.unlink()
    except FileNotFoundError:
        typer.echo(f"not logged in: there is no token in {path}", err=True)
    except OSError as exc:
        fail(f"cannot remove the API token in {path}: {exc.strerror or type(exc).__name__}")
    else:
        typer.echo(f"logged out: removed the API token in {path}", err=True)
    if settings.token is not None and settings.token.get_secret_value():
        typer.echo("ZERG_TOKEN is still set, and commands keep sending it", err=True)
