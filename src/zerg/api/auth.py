"""Who a request acts as: the local owner (local mode, loopback only), a token's user, or
the user signed in to the dashboard (a session cookie).

Local mode holds while no user exists (and `ZERG_AUTH` is not `required`). Its only guard is
the network: the server binds loopback (`zerg serve` refuses more), and the `Host` header must
name loopback too, so a web page cannot reach it through a DNS name rebound to 127.0.0.1.

A browser sends its cookies along with requests that other sites' pages make, so a request
that changes something is refused when its `Origin` is another site's, and one that is
authenticated by the session cookie must also carry the page's CSRF token (`X-CSRF-Token`).
"""

import time
from urllib.parse import urlsplit

from fastapi import Request
from starlette.requests import HTTPConnection

from zerg.db import Database
from zerg.errors import Forbidden, MisdirectedRequest, Unauthorized
from zerg.net import is_loopback_host
from zerg.services.login_sessions import csrf_valid, session_actor
from zerg.services.users import LOCAL_OWNER, Actor, authenticate, users_exist
from zerg.settings import Settings

SESSION_COOKIE = "zerg_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# While no user exists, how long "still local mode" is believed before the users table is
# read again (a user created by `zerg users create` switches auth mode on within this).
LOCAL_MODE_RECHECK_S = 1.0


class AuthMode:
    """Whether requests need a token; once they do, they always will (users are never
    deleted), so only local mode is re-checked."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.database = database
        self._required = settings.auth == "required"
        # `zerg serve --insecure-no-auth`: local mode, open to whoever reaches the port.
        self.open_to_any_host = settings.insecure_no_auth
        self._local_until = 0.0

    def required(self) -> bool:
        if self._required:
            return True
        if time.monotonic() < self._local_until:
            return False
        with self.database.session() as session:
            if users_exist(session=session):
                self._required = True
                return True
        self._local_until = time.monotonic() + LOCAL_MODE_RECHECK_S
        return False


async def current_actor(request: Request) -> Actor:
    """The actor of this request (also on `request.state.actor`); 401 `unauthorized` without a
    valid token in auth mode, 421 `host_not_allowed` for a non-loopback Host in local mode."""
    return actor_of(request)


def actor_of(request: HTTPConnection, *, csrf_checked: bool = False) -> Actor:
    """`current_actor` for any connection, a WebSocket's handshake too; 403
    `origin_not_allowed` for a change asked by another site's page, 403 `csrf_failed` for a
    change asked with the session cookie but without the page's CSRF token (`csrf_checked`:
    the caller checked a form's token instead)."""
    if _changes_something(request):
        check_origin(request)
    mode: AuthMode = request.app.state.auth_mode
    if mode.required():
        cookie = request.cookies.get(SESSION_COOKIE)
        with mode.database.session() as session:
            if cookie and "authorization" not in request.headers:
                actor = session_actor(cookie, session=session)
                if _changes_something(request) and not csrf_checked:
                    check_csrf(cookie, request.headers.get(CSRF_HEADER))
            else:
                actor = authenticate(_bearer_token(request), session=session)
            session.commit()  # the token's or session's last use, when it was due
    else:
        if not mode.open_to_any_host:
            _require_loopback_host(request)
        actor = LOCAL_OWNER
    request.state.actor = actor
    return actor


def check_csrf(browser_secret: str | None, given: str | None) -> None:
    if not csrf_valid(browser_secret, given):
        raise Forbidden(
            "this change needs the CSRF token of a dashboard page of this Zerg; reload the "
            "page and try again (API clients send a Bearer token instead of the cookie)",
            code="csrf_failed",
        )


def check_origin(request: HTTPConnection) -> None:
    """A browser names the page a request comes from in `Origin`: a page of another site may
    neither change anything here nor read this Zerg's event stream (WebSockets are not bound by
    the same-origin policy)."""
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or a same-origin GET
    host = request.headers.get("host", "")
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and _netloc(parts.scheme, parts.netloc) == _netloc(
        parts.scheme, host
    ):
        return
    raise Forbidden(
        f"a page at {origin[:100]!r} may not use this Zerg; open the dashboard from this "
        "server's own address",
        code="origin_not_allowed",
    )


def _netloc(scheme: str, netloc: str) -> str:
    netloc = netloc.lower()
    default = ":443" if scheme == "https" else ":80"
    return netloc.removesuffix(default)


def _changes_something(request: HTTPConnection) -> bool:
    # A WebSocket handshake is a GET, and the hub checks its Origin itself.
    return request.scope["type"] == "http" and request.scope["method"] not in SAFE_METHODS


def _bearer_token(request: HTTPConnection) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "this Zerg has users: send an API token as 'Authorization: Bearer zerg_...' "
            "(create one with `zerg tokens create`)"
        )
    return token.strip()


def _require_loopback_host(request: HTTPConnection) -> None:
    host = request.headers.get("host", "")
    if not is_loopback_host(host):
        raise MisdirectedRequest(
            f"this Zerg has no users, so it serves loopback clients only, and Host {host!r} "
            "is not a loopback name: open it as http://127.0.0.1:<port>, or create a user "
            "(`zerg users create NAME --admin`) to serve other hosts with API tokens"
        )
