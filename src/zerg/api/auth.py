"""Who a request acts as: the local owner (local mode, loopback only) or a token's user.

Local mode holds while no user exists (and `ZERG_AUTH` is not `required`). Its only guard is
the network: the server binds loopback (`zerg serve` refuses more), and the `Host` header must
name loopback too, so a web page cannot reach it through a DNS name rebound to 127.0.0.1.
"""

import time

from fastapi import Request
from starlette.requests import HTTPConnection

from zerg.db import Database
from zerg.errors import MisdirectedRequest, Unauthorized
from zerg.net import is_loopback_host
from zerg.services.users import LOCAL_OWNER, Actor, authenticate, users_exist
from zerg.settings import Settings

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


def actor_of(request: HTTPConnection) -> Actor:
    """`current_actor` for any connection, a WebSocket's handshake too."""
    mode: AuthMode = request.app.state.auth_mode
    if mode.required():
        with mode.database.session() as session:
            actor = authenticate(_bearer_token(request), session=session)
            session.commit()  # the token's last use, when it was due for an update
    else:
        if not mode.open_to_any_host:
            _require_loopback_host(request)
        actor = LOCAL_OWNER
    request.state.actor = actor
    return actor


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
