"""Users and their API tokens: who may use a shared Zerg, and how a request proves it.

A Zerg with no users is in local mode: it serves loopback only and every request acts as the
built-in local owner. The first user switches it to auth mode for good: from then on every
request needs a token. Tokens are `zerg_<random>`, high-entropy, so one SHA-256 is the right
hash for them (a password needs a slow one); only the hash is stored.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from pwdlib import PasswordHash
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from zerg import clock
from zerg.errors import Conflict, InvalidInput, NotFound, Unauthorized
from zerg.models import Agent, ApiToken, User

TOKEN_PREFIX = "zerg_"  # noqa: S105 - the visible start of every token, not a secret
# The characters of a token shown in lists and used to revoke it: enough to tell tokens apart,
# far too few to guess the rest.
SHOWN_CHARS = 12
# How stale a token's `last_used_at` may get: refreshing it on every request would be a write.
LAST_USED_EVERY = timedelta(minutes=1)
MIN_PASSWORD_CHARS = 8
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_passwords = PasswordHash.recommended()


@dataclass(frozen=True)
class Actor:
    """Who a request (or a command) acts as."""

    user_id: int | None  # None: the built-in local owner of a Zerg without users
    name: str
    is_admin: bool
    token_id: int | None = None  # the API token the request came with


LOCAL_OWNER = Actor(user_id=None, name="local", is_admin=True)


def users_exist(*, session: Session) -> bool:
    return bool(session.scalar(select(exists().where(User.id.is_not(None)))))


def create_user(name: str, *, admin: bool, session: Session) -> User:
    """A new user. The first one also takes over the agents of the local owner."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"user name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            code="invalid_user_name",
        )
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} exists already", code="user_exists")
    first = not users_exist(session=session)
    user = User(name=name, is_admin=admin)
    session.add(user)
    session.flush()
    if first:
        session.execute(update(Agent).where(Agent.owner_id.is_(None)).values(owner_id=user.id))
    return user


def list_users(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def get_user(name: str, *, session: Session) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}; `zerg users list` shows them")
    return user


def disable_user(name: str, *, session: Session) -> User:
    """The user's tokens and password stop working at once; their objects stay."""
    user = get_user(name, session=session)
    user.disabled = True
    session.flush()
    return user


def set_password(name: str, password: str, *, session: Session) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD_CHARS} characters",
            code="password_too_short",
        )
    user = get_user(name, session=session)
    user.password_hash = _passwords.hash(password)
    session.flush()


def check_password(name: str, password: str, *, session: Session) -> User:
    """The enabled user whose password this is; `Unauthorized` otherwise (the same answer
    whether the name or the password was wrong)."""
    user = session.scalar(select(User).where(User.name == name))
    hashed = user.password_hash if user is not None else None
    # Verify against something even for an unknown name, so timing does not tell names apart.
    valid = _passwords.verify(password, hashed or _DUMMY_HASH)
    if user is None or hashed is None or not valid or user.disabled:
        raise Unauthorized("wrong user name or password")
    return user


_DUMMY_HASH = _passwords.hash(secrets.token_urlsafe(16))


def create_token(
    user: User,
    *,
    name: str | None = None,
    expires_in: timedelta | None = None,
    session: Session,
) -> tuple[ApiToken, str]:
    """A new API token for `user`: the row, and the token itself (shown this once)."""
    if name is not None and not 1 <= len(name) <= 100:
        raise InvalidInput("a token's name is 1 to 100 characters", code="invalid_token_name")
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("a token must expire in the future", code="invalid_expiry")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        name=name,
        prefix=token[: len(TOKEN_PREFIX) + SHOWN_CHARS],
        token_hash=_digest(token),
        expires_at=clock.now() + expires_in if expires_in is not None else None,
    )
    session.add(row)
    session.flush()
    return row, token


def list_tokens(*, session: Session, user: User | None = None) -> list[tuple[ApiToken, str]]:
    """Tokens (with their user's name), oldest first; never the tokens themselves."""
    stmt = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
    if user is not None:
        stmt = stmt.where(ApiToken.user_id == user.id)
    return [(token, owner) for token, owner in session.execute(stmt.order_by(ApiToken.id))]


def revoke_token(prefix: str, *, session: Session) -> ApiToken:
    """Revoke the token `prefix` names: its start as `zerg tokens list` shows it, some of that,
    or more (the whole token)."""
    shown = len(TOKEN_PREFIX) + SHOWN_CHARS
    names = (
        ApiToken.prefix == prefix[:shown]
        if len(prefix) >= shown
        else ApiToken.prefix.startswith(prefix, autoescape=True)
    )
    matches = list(session.scalars(select(ApiToken).where(names)))
    if not prefix.startswith(TOKEN_PREFIX) or not matches:
        raise NotFound(f"no token starts with {prefix!r}; `zerg tokens list` shows them")
    if len(matches) > 1:
        raise Conflict(
            f"{len(matches)} tokens start with {prefix!r}; give more of it", code="ambiguous"
        )
    token = matches[0]
    token.revoked_at = token.revoked_at or clock.now()
    session.flush()
    return token


def authenticate(token: str, *, session: Session) -> Actor:
    """The actor a Bearer token stands for; `Unauthorized` for a missing, unknown, revoked or
    expired token, or a disabled user (the message never repeats the token)."""
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthorized(
            f"an API token starts with {TOKEN_PREFIX}; create one with `zerg tokens create`"
        )
    digest = _digest(token)
    found = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest)
    ).one_or_none()
    if found is None or not hmac.compare_digest(found[0].token_hash, digest):
        raise Unauthorized("unknown API token")
    row, user = found
    now = clock.now()
    if row.revoked_at is not None:
        raise Unauthorized(f"API token {row.prefix}… was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized(f"API token {row.prefix}… expired; create a new one")
    if user.disabled:
        raise Unauthorized(f"user {user.name!r} is disabled")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
        row.last_used_at = now
        session.flush()
    return Actor(user_id=user.id, name=user.name, is_admin=user.is_admin, token_id=row.id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m` or `2w` as a duration; `InvalidInput` otherwise."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhdw])\s*", text)
    if match is None:
        raise InvalidInput(
            f"{text!r} is not a duration: use a number and a unit, e.g. 90m, 12h, 30d or 2w",
            code="invalid_duration",
        )
    amount, unit = int(match[1]), match[2]
    return {
        "m": timedelta(minutes=amount),
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
        "w": timedelta(weeks=amount),
    }[unit]
