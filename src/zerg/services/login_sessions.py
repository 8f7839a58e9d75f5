"""The dashboard's login sessions, and the CSRF tokens bound to a browser.

A session is a random token in an HttpOnly cookie; only its SHA-256 is stored (like an API
token's), so signing out, or disabling the user, ends it at once. A page's CSRF token is an
HMAC of the browser's secret (its session token, or in local mode a cookie of its own): a page
of another site can neither read it nor compute it.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from zerg import clock
from zerg.errors import Unauthorized
from zerg.models import LoginSession, User
from zerg.services.users import Actor

# How stale a session's `last_seen_at` may get: refreshing it on every page would be a write.
SEEN_EVERY = timedelta(minutes=1)
_EXPIRED = "your session has ended; sign in again"


def start_session(user: User, *, lifetime: timedelta, session: Session) -> str:
    """A new session for `user`; returns its token (for the cookie, never stored)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    # Each sign-in is a good moment to forget the sessions that ended long ago.
    session.execute(delete(LoginSession).where(LoginSession.expires_at < now - lifetime))
    session.add(LoginSession(user_id=user.id, token_hash=_digest(token), expires_at=now + lifetime))
    session.flush()
    return token


def session_actor(token: str, *, session: Session) -> Actor:
    """The user a session token stands for; `Unauthorized` if it is unknown, expired or its
    user is disabled."""
    found = session.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == _digest(token))
    ).one_or_none()
    if found is None:
        raise Unauthorized(_EXPIRED)
    row, user = found
    now = clock.now()
    if row.expires_at <= now or user.disabled:
        raise Unauthorized(_EXPIRED)
    if now - row.last_seen_at >= SEEN_EVERY:
        row.last_seen_at = now
        session.flush()
    return Actor(user_id=user.id, name=user.name, is_admin=user.is_admin)


def end_session(token: str, *, session: Session) -> None:
    session.execute(delete(LoginSession).where(LoginSession.token_hash == _digest(token)))
    session.flush()


def new_browser_secret() -> str:
    """The secret a browser without a session (local mode) keeps its CSRF tokens bound to."""
    return secrets.token_urlsafe(32)


def csrf_token(browser_secret: str) -> str:
    return hmac.new(browser_secret.encode(), b"zerg-csrf", hashlib.sha256).hexdigest()


def csrf_valid(browser_secret: str | None, given: str | None) -> bool:
    if not browser_secret or not given:
        return False
    return hmac.compare_digest(csrf_token(browser_secret), given)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
