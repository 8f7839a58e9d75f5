"""`zerg tokens`: create, list and revoke the API tokens of a shared Zerg, on its database."""

from datetime import datetime
from typing import Annotated, Literal

import typer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from zerg import clock
from zerg.cli.common import EXIT_INVALID, emit_json, fail, load_settings, migrated_session
from zerg.errors import InvalidInput
from zerg.models import ApiToken, User
from zerg.services import users as service

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TokenStatus = Literal["active", "expired", "revoked"]


class TokenRead(BaseModel):
    """What a list shows of a token: enough to recognise and revoke it, never the token itself
    nor its hash."""

    prefix: str
    user: str
    name: str | None
    status: TokenStatus
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken, user: str, now: datetime) -> "TokenRead":
        status: TokenStatus = "active"
        if token.revoked_at is not None:
            status = "revoked"
        elif token.expires_at is not None and token.expires_at <= now:
            status = "expired"
        return cls(
            prefix=token.prefix,
            user=user,
            name=token.name,
            status=status,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )


class TokenCreated(TokenRead):
    """A new token with the token itself, which is shown this once."""

    token: str


def show_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def announce_token(token: ApiToken, user: str) -> None:
    """The stderr lines beside a token printed once: they never repeat the token."""
    expiry = f", expires {show_time(token.expires_at)} UTC" if token.expires_at else ""
    typer.echo(f"created API token {token.prefix}… for {user!r}{expiry}", err=True)
    typer.echo(
        "it will not be shown again: clients send it as `Authorization: Bearer <token>`, "
        "and `zerg` commands read it from ZERG_TOKEN",
        err=True,
    )


def _token_owner(name: str | None, session: Session) -> User:
    """The user named by --user, else the only admin; an enabled one either way."""
    owner = service.get_user(name, session=session) if name is not None else _only_admin(session)
    if owner.disabled:
        fail(f"user {owner.name!r} is disabled: a token of theirs would not work", EXIT_INVALID)
    return owner


def _only_admin(session: Session) -> User:
    admins = [u for u in service.list_users(session=session) if u.is_admin and not u.disabled]
    if len(admins) == 1:
        return admins[0]
    if not admins:
        fail(
            "there is no enabled admin to create the token for: name its user with --user NAME "
            "(or create an admin with `zerg users create NAME --admin`)",
            EXIT_INVALID,
        )
    names = ", ".join(admin.name for admin in admins)
    fail(f"{len(admins)} admins ({names}): name the token's user with --user NAME", EXIT_INVALID)


@app.command("create")
def create_token(
    user: Annotated[
        str | None, typer.Option(help="Whose token it is. Default: the only admin.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A label, e.g. the machine it is for.")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90m, 12h, 30d or 2w. Default: never.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print it, once."""
    try:
        expires_in = service.parse_duration(expires) if expires is not None else None
    except InvalidInput as exc:
        fail(f"invalid --expires: {exc.detail}", EXIT_INVALID)
    with migrated_session(load_settings()) as session:
        owner = _token_owner(user, session)
        row, token = service.create_token(owner, name=name, expires_in=expires_in, session=session)
        session.commit()
        read = TokenRead.of(row, owner.name, clock.now())
    if as_json:
        emit_json(TokenCreated(**read.model_dump(), token=token))
    else:
        typer.echo(token)
    announce_token(row, owner.name)


@app.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens, oldest first: their prefixes, never the tokens."""
    with migrated_session(load_settings()) as session:
        owner = service.get_user(user, session=session) if user is not None else None
        now = clock.now()
        tokens = [
            TokenRead.of(token, name, now)
            for token, name in service.list_tokens(session=session, user=owner)
        ]
    if as_json:
        emit_json(tokens)
        return
    typer.echo(
        f"{'PREFIX':18} {'USER':16} {'STATUS':8} {'CREATED':16}  {'LAST USED':16}  "
        f"{'EXPIRES':16}  NAME"
    )
    for t in tokens:
        typer.echo(
            f"{t.prefix:18} {t.user:16} {t.status:8} {show_time(t.created_at):16}  "
            f"{show_time(t.last_used_at):16}  {show_time(t.expires_at):16}  {t.name or '-'}"
        )


@app.command("revoke")
def revoke_token(
    prefix: Annotated[str, typer.Argument(help="The token's prefix, as `zerg tokens list` shows.")],
) -> None:
    """Revoke an API token: it stops working at once."""
    with migrated_session(load_settings()) as session:
        token = service.revoke_token(prefix, session=session)
        session.commit()
    typer.echo(f"revoked API token {token.prefix}…", err=True)
