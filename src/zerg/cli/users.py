"""`zerg users`: the accounts of a shared Zerg, managed directly on its database."""

import sys
from datetime import datetime
from typing import Annotated

import typer
from pydantic import BaseModel

from zerg.cli.common import (
    EXIT_INVALID,
    emit_json,
    fail,
    load_settings,
    migrated_session,
    session_scope,
)
from zerg.cli.tokens import announce_token, show_time
from zerg.models import User
from zerg.services import users as service

app = typer.Typer(help="Create, list and disable users; set passwords.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
NameArg = Annotated[str, typer.Argument(help="The user's name.")]


class UserRead(BaseModel):
    """A user as lists show it: whether a password is set, never its hash."""

    name: str
    admin: bool
    disabled: bool
    has_password: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> "UserRead":
        return cls(
            name=user.name,
            admin=user.is_admin,
            disabled=user.disabled,
            has_password=user.password_hash is not None,
            created_at=user.created_at,
        )


class UserCreated(BaseModel):
    user: UserRead
    token: str


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


@app.command("create")
def create_user(
    name: NameArg,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user and print their first API token, once."""
    with migrated_session(load_settings()) as session:
        first = not service.users_exist(session=session)
        user = service.create_user(name, admin=admin, session=session)
        row, token = service.create_token(user, session=session)
        session.commit()
        created = UserCreated(user=UserRead.of(user), token=token)
    if as_json:
        emit_json(created)
    else:
        typer.echo(token)
    typer.echo(f"created {'admin' if admin else 'user'} {name!r}", err=True)
    if first:
        # Scripts and browsers that used the tokenless local mode stop working now: say why.
        typer.echo(
            "this Zerg now has users: every API request needs a token from now on, and the "
            f"agents created so far belong to {name!r}",
            err=True,
        )
    announce_token(row, name)


@app.command("list")
def list_users(as_json: JsonOpt = False) -> None:
    """List users, oldest first."""
    with migrated_session(load_settings()) as session:
        users = [UserRead.of(user) for user in service.list_users(session=session)]
    if as_json:
        emit_json(users)
        return
    typer.echo(f"{'NAME':24} {'ADMIN':5}  {'DISABLED':8}  {'PASSWORD':8}  CREATED")
    for user in users:
        typer.echo(
            f"{user.name:24} {_yes_no(user.admin):5}  {_yes_no(user.disabled):8}  "
            f"{_yes_no(user.has_password):8}  {show_time(user.created_at)}"
        )


@app.command("disable")
def disable_user(name: NameArg) -> None:
    """Disable a user: their tokens and password stop working at once; their agents stay."""
    with migrated_session(load_settings()) as session:
        service.disable_user(name, session=session)
        session.commit()
    typer.echo(f"disabled user {name!r}: their API tokens and password no longer work", err=True)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _password_from_stdin() -> str:
    text = sys.stdin.read()
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        fail(
            "no password on stdin: pipe it in on one line, or run this in a terminal to be asked",
            EXIT_INVALID,
        )
    if "\n" in password or "\r" in password:
        fail("the password on stdin must be one line", EXIT_INVALID)
    return password


@app.command("set-password")
def set_password(name: NameArg) -> None:
    """Set a user's password (for the dashboard): asked twice in a terminal, else read from
    one line of stdin. Never an argument, which shell history and `ps` would keep."""
    settings = load_settings()
    # The user is checked before asking, and no database session stays open while a person types.
    with migrated_session(settings) as session:
        service.get_user(name, session=session)
    if _stdin_is_terminal():
        password = typer.prompt(
            f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        password = _password_from_stdin()
    with session_scope(settings) as session:
        service.set_password(name, password, session=session)
        session.commit()
    typer.echo(f"password of {name!r} set", err=True)
